"""Registrations of overtone-torch. Imports only overtone: listing never imports torch."""

from overtone import Component, Param, hookimpl

ACTIVATIONS = ("relu", "gelu", "silu", "tanh")


@hookimpl
def overtone_engines():
    return [
        Component(
            "engine",
            "torch",
            "overtone_torch.engine:TorchEngine",
            "training loop: eval, checkpoints, resume, probes, analyzers, report (torch)",
        )
    ]


@hookimpl
def overtone_tasks():
    fraction = Param(0.3, help="fraction of all examples used for training")
    return [
        Component("task", "modular-arithmetic", "overtone_torch.tasks.modular:ModularArithmetic",
                  "a op b mod p over token pairs; the grokking benchmark",
                  params={"p": Param(97, help="prime modulus"),
                          "op": Param("+", choices=("+", "-", "*", "/"), help="operation"),
                          "train_fraction": fraction}),
        Component("task", "digits", "overtone_torch.tasks.tabular:Digits",
                  "scikit-learn's bundled 8x8 handwritten digits (real data, no download)",
                  params={"train_fraction": Param(0.8, help="fraction used for training")}),
        Component("task", "gaussian-mixture", "overtone_torch.tasks.tabular:GaussianMixture",
                  "synthetic classification: one Gaussian blob per class",
                  params={"n_classes": 4, "dim": 16, "n_samples": 2000,
                          "separation": Param(3.0, help="distance scale of the class means"),
                          "train_fraction": Param(0.8)}),
        Component("task", "char-text", "overtone_torch.tasks.text:CharText",
                  "character-level language modelling on a text file (bundled: KJV corpus)",
                  params={"path": Param("", help="UTF-8 text file (default: the bundled corpus)"),
                          "context": Param(128, help="characters per training window"),
                          "eval_fraction": Param(0.1, help="tail of the text held out"),
                          "eval_windows": Param(64, help="windows in the evaluation set")}),
    ]


@hookimpl
def overtone_models():
    return [
        Component("model", "mlp", "overtone_torch.models.mlp:MLP",
                  "multilayer perceptron; token inputs are embedded and concatenated",
                  params={"width": 256, "depth": 1,
                          "activation": Param("relu", choices=ACTIVATIONS),
                          "init_scale": Param(1.0, help="weights ~ N(0, init_scale^2 / fan_in)"),
                          "embed_dim": Param(128, help="embedding width per token")}),
        Component("model", "transformer", "overtone_torch.models.transformer:Transformer",
                  "GPT-2-style pre-LN decoder (preset 'gpt2-small' = 124M parameters)",
                  params={"n_layer": 2, "n_head": 4, "d_model": 128,
                          "context": Param(0, help="maximum sequence length (0: the task's)"),
                          "dropout": 0.0, "bias": True,
                          "tie_weights": Param(False, help="share the loss head with the token embedding"),
                          "preset": Param("", choices=("", "gpt2-small"), help="a named shape")}),
    ]


@hookimpl
def overtone_losses():
    return [
        Component("loss", "cross-entropy", "overtone_torch.losses.cross_entropy:CrossEntropyLoss",
                  "linear head + softmax cross-entropy (chunk_size: no full logits matrix)",
                  params={"bias": True,
                          "chunk_size": Param(None, type=int, help="rows per chunk; never materialises (N, V) logits"),
                          "label_smoothing": 0.0}),
        Component("loss", "mse", "overtone_torch.losses.cross_entropy:MSELoss",
                  "linear head regressed onto one-hot targets"),
    ]


@hookimpl
def overtone_optimizers():
    common = {"lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8}
    return [
        Component("optimizer", "adamw", "overtone_torch.optimizers:adamw", "torch.optim.AdamW (foreach)",
                  params={**common, "weight_decay": 0.01, "foreach": True}),
        Component("optimizer", "adam", "overtone_torch.optimizers:adam", "torch.optim.Adam (foreach)",
                  params={**common, "weight_decay": 0.0, "foreach": True}),
        Component("optimizer", "sgd", "overtone_torch.optimizers:sgd", "torch.optim.SGD (foreach)",
                  params={"lr": 0.1, "momentum": 0.0, "nesterov": False, "weight_decay": 0.0,
                          "foreach": True}),
    ]
