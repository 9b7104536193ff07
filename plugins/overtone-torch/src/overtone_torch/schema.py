"""The torch engine's config sections, their keys, defaults and bounds (validated by ``TorchEngine.resolve``)."""

from overtone import Param, runschema

SECTIONS = {
    "run": "core: name, engine, seed, description",
    "task": "the data: a task component and its parameters",
    "model": "the trunk: a model component and its parameters",
    "loss": "the head and criterion: a loss component and its parameters",
    "optimizer": "an optimizer component and its hyper-parameters",
    "schedule": "learning-rate warm-up and decay",
    "train": "steps, batches, evaluation, checkpoints, device",
    "probes": "[[probes]]: model state turned into xarray at chosen steps",
    "analyzers": "[[analyzers]]: analyzers run on probes during and after training",
}

#: Components a section names when it leaves out ``name``.
DEFAULT_COMPONENTS = {"task": None, "model": None, "loss": "cross-entropy", "optimizer": "adamw"}

SCHEDULE = {
    "warmup_steps": Param(0, min=0, help="linear warm-up: lr * (s + 1) / warmup_steps for steps s < warmup_steps"),
    "decay": Param("constant", choices=("constant", "cosine"), help="after warm-up: constant, or cosine "
                                                                     "down to lr * min_lr_ratio at the last step"),
    "min_lr_ratio": Param(0.1, min=0.0, max=1.0, help="cosine: the final learning rate as a fraction of lr"),
}

TRAIN = {
    "steps": Param(1000, min=1, help="optimizer steps"),
    "batch_size": Param(512, min=1, help="global batch (examples or sequences), split evenly over DDP processes"),
    "eval_every": Param(100, min=1, help="evaluate train and eval loss/accuracy every N steps (and at the end)"),
    "eval_batch_size": Param(0, min=0, help="examples (or sequences) per forward pass in evaluation and probes "
                                     "(0: the training batch per process)"),
    "checkpoint_every": Param(500, min=1, help="write checkpoint.pt every N steps (and at the end)"),
    "log_every": Param(10, min=1, help="read the per-step training losses back from the device every N steps "
                                "(every step's loss is kept; NaN/inf is caught at these reads)"),
    "grad_clip": Param(1.0, min=0.0, help="clip the global gradient norm to this value (0: off)"),
    "device": Param("auto", choices=("auto", "cpu", "cuda"), help="auto: CUDA (bf16 autocast) when available"),
    "compile": Param(False, help="train through torch.compile(model)"),
    "threads": Param(0, min=0, help="torch CPU threads (0: torch's default)"),
    "features": Param(0, min=0, help="feature width between model and loss (0: the model's d_model or width)"),
}

PROBE_KINDS = tuple(runschema.PROBE_KINDS)  # names, dims and attrs: overtone.runschema

PROBE = {
    "kind": Param(required=True, type=str, choices=PROBE_KINDS,
                  help="embeddings (token, embed_dim); hidden (sample, feature) + labels; "
                       "outputs (a, b, class) softmax probabilities over a modular task's input grid; "
                       "predictions (eval_sample, output) outputs on the evaluation set + inputs, targets; "
                       "weights: weight_<name> for each parameter in names"),
    "every": Param(100, min=1, help="record every N steps (and at the end)"),
    "samples": Param(256, min=1, help="hidden: examples in the fixed probe batch"),
    "split": Param("eval", choices=("eval", "train"),
                   help="hidden: the probe batch's split: the task's fixed evaluation batch, or the "
                        "first `samples` training examples (tasks that hold their data in memory)"),
    "output": Param("probabilities", choices=("probabilities", "scores"),
                    help="outputs, predictions: softmax probabilities, or the loss head's scores "
                         "(logits); predictions of a regression task are its outputs"),
    "names": Param([], help="weights: parameter names, e.g. 'model.layers.0.weight' (see the error "
                            "message of a wrong name for the list)"),
}

ANALYZER_KEYS = {
    "every": Param(0, min=0, help="also run during training every N steps (0: only on the finished run)"),
    "input": Param("probes", choices=("probes", "metrics"), help="which dataset the analyzer reads"),
}
