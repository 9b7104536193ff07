"""The torch engine's config sections and their defaults."""

from overtone import Param

SECTIONS = {
    "run": "core: name, engine, seed",
    "task": "the data: a task component",
    "model": "the trunk: a model component",
    "loss": "the head and criterion: a loss component",
    "optimizer": "an optimizer component",
    "schedule": "learning-rate warm-up and decay",
    "train": "steps, batches, evaluation, checkpoints, device",
    "probes": "[[probes]]: model state turned into xarray at chosen steps",
    "analyzers": "[[analyzers]]: analyzers run on probes during and after training",
}

SCHEDULE = {
    "warmup_steps": Param(0, help="linear warm-up from 0 to lr over this many steps"),
    "decay": Param("constant", choices=("constant", "cosine"), help="after warm-up"),
    "min_lr_ratio": Param(0.1, help="cosine decays to lr * min_lr_ratio"),
}

TRAIN = {
    "steps": Param(1000, help="optimizer steps"),
    "batch_size": Param(512, help="global batch (examples or sequences)"),
    "eval_every": Param(100, help="evaluate every N steps (and at the end)"),
    "eval_batch_size": Param(2048, help="batch size for evaluation"),
    "checkpoint_every": Param(500, help="write checkpoint.pt every N steps (and at the end)"),
    "grad_clip": Param(1.0, help="clip the gradient norm (0: off)"),
    "device": Param("auto", choices=("auto", "cpu", "cuda"), help="auto: CUDA when available"),
    "compile": Param(False, help="torch.compile the model"),
    "threads": Param(0, help="torch CPU threads (0: torch's default)"),
    "features": Param(0, help="feature width between model and loss (0: the model's d_model or width)"),
}

PROBE = {
    "kind": Param(required=True, type=str, choices=("embeddings", "hidden", "outputs", "weights"),
                  help="what to record"),
    "every": Param(100, help="record every N steps (and at the end)"),
    "samples": Param(256, help="hidden: examples in the probe batch"),
    "names": Param([], help="weights: parameter names to record"),
}

ANALYZER_KEYS = {
    "every": Param(0, help="run during training every N steps (0: only on the finished run)"),
    "input": Param("probes", choices=("probes", "metrics"), help="which dataset the analyzer reads"),
}
