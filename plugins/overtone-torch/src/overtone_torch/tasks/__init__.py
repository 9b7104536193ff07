"""Tasks: data sources with train/eval splits (see ``overtone_torch.task_api``)."""
