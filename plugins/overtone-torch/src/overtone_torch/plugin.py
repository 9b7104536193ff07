"""Registrations of overtone-torch. Imports only overtone: listing never imports torch."""

from overtone import Component, Param, hookimpl

from overtone_torch.kan import components as kan

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
    return [
        Component("task", "modular-arithmetic", "overtone_torch.tasks.modular:ModularArithmetic",
                  "a op b mod p over token pairs (a, b); the grokking benchmark",
                  params={"p": Param(97, min=2, help="prime modulus: tokens and classes are 0..p-1"),
                          "op": Param("+", choices=("+", "-", "*", "/"),
                                      help="operation; '/' multiplies by the modular inverse (b != 0)"),
                          "train_fraction": Param(0.3, min=0.0, max=1.0, exclusive_min=True, exclusive_max=True,
                                                  help="fraction of all pairs used for training"),
                          "n_samples": Param(0, min=0, help="0: every pair once; N > 0: N pairs drawn uniformly "
                                                            "with replacement, then split (train and eval may "
                                                            "share pairs; the harmonic reference's protocol)")}),
        Component("task", "digits", "overtone_torch.tasks.tabular:Digits",
                  "scikit-learn's bundled 8x8 handwritten digits (real data, no download)",
                  params={"train_fraction": Param(0.8, min=0.0, max=1.0, exclusive_min=True, exclusive_max=True,
                                                  help="fraction of the 1,797 images used for training"),
                          "target": Param("classes", choices=("classes", "reconstruction"),
                                          help="classes: the digit; reconstruction: the 64 pixels themselves "
                                               "(real targets, an auto-encoder's task; needs loss mse)")}),
        Component("task", "gaussian-mixture", "overtone_torch.tasks.tabular:GaussianMixture",
                  "synthetic classification: one Gaussian blob N(mu_k, I) per class",
                  params={"n_classes": Param(4, min=2, help="number of classes"),
                          "dim": Param(16, min=1, help="input dimension"),
                          "n_samples": Param(2000, help="examples in total (train + eval), at least 2 * n_classes"),
                          "separation": Param(3.0, min=0.0, help="typical norm of the class means (noise std is 1)"),
                          "train_fraction": Param(0.8, min=0.0, max=1.0, exclusive_min=True, exclusive_max=True,
                                                  help="fraction used for training")}),
        Component("task", "char-text", "overtone_torch.tasks.text:CharText",
                  "character-level language modelling on a text file (bundled: KJV corpus, 1.27 MB)",
                  params={"path": Param("", help="UTF-8 text file (empty: the bundled corpus, overtone_torch/data/corpus.txt)"),
                          "context": Param(128, min=1, help="characters per training window (sequence length)"),
                          "eval_fraction": Param(0.1, min=0.0, max=1.0, exclusive_min=True, exclusive_max=True,
                                                 help="tail of the text held out for evaluation"),
                          "eval_windows": Param(64, min=1, help="evenly spaced windows in the evaluation set"),
                          "validation_fraction": Param(0.0, min=0.0, max=1.0, exclusive_max=True,
                                                       help="a block just before the tail, held out of "
                                                            "training too (0: none)"),
                          "evaluate_on": Param("tail", choices=("tail", "validation"),
                                               help="the held-out block the eval split holds (validation: "
                                                    "for choosing hyper-parameters apart from the tail)")}),
    ] + kan.tasks()


@hookimpl
def overtone_models():
    return [
        Component("model", "mlp", "overtone_torch.models.mlp:MLP",
                  "multilayer perceptron; token inputs are embedded and concatenated",
                  params={"width": Param(256, min=1, help="units per hidden layer"),
                          "depth": Param(1, min=0, help="hidden layers (0: one linear map to the features)"),
                          "activation": Param("relu", choices=ACTIVATIONS, help="hidden-layer nonlinearity"),
                          "init_scale": Param(1.0, min=0.0, exclusive_min=True,
                                              help="weights ~ N(0, init_scale^2 / fan_in), "
                                                   "embeddings ~ N(0, init_scale^2)"),
                          "embed_dim": Param(128, min=1, help="embedding width per token (token inputs)"),
                          "embed_std": Param(None, type=(float, int), min=0.0, exclusive_min=True,
                                             help="std of the token embedding at init (default: init_scale)"),
                          "tie_weights": Param(False, help="the loss head's weight is the token embedding "
                                                           "(needs d_out = embed_dim, vocabulary = classes)"),
                          "norm": Param("none", choices=("none", "batch"),
                                        help="batch: BatchNorm1d after each hidden linear layer (then "
                                             "bias-free), before its activation; running averages in "
                                             "evaluation")}),
        Component("model", "transformer", "overtone_torch.models.transformer:Transformer",
                  "GPT-2-style pre-LN decoder (preset 'gpt2-small': 124M parameters)",
                  params={"n_layer": Param(2, min=1, help="transformer blocks"),
                          "n_head": Param(4, min=1, help="attention heads (must divide d_model)"),
                          "d_model": Param(128, min=1, help="residual width = feature width"),
                          "context": Param(0, min=0, help="learned positions (0: the task's sequence length)"),
                          "dropout": Param(0.0, min=0.0, max=1.0, exclusive_max=True,
                                           help="dropout on embeddings, attention and residuals"),
                          "bias": Param(True, help="biases in linear layers and LayerNorms"),
                          "tie_weights": Param(False, help="the loss head's weight is the token embedding"),
                          "preset": Param("", choices=("", "gpt2-small"),
                                          help="a named shape; sets n_layer, n_head, d_model, context")}),
        Component("model", "bottleneck-autoencoder", "overtone_torch.models.autoencoder:BottleneckAutoencoder",
                  "encoder-decoder MLP with two bottleneck layers (arXiv 2501.09659's setting)",
                  params={"width": Param(64, min=1, help="units of the encoder and decoder layers (the features)"),
                          "bottleneck": Param(8, min=1, help="units of each of the two bottleneck layers "
                                                             "(<= width)"),
                          "activation": Param("tanh", choices=ACTIVATIONS, help="nonlinearity after every layer"),
                          "init_scale": Param(1.0, min=0.0, exclusive_min=True,
                                              help="weights ~ N(0, init_scale^2 / fan_in)")}),
    ] + kan.models()


@hookimpl
def overtone_losses():
    return [
        Component("loss", "cross-entropy", "overtone_torch.losses.cross_entropy:CrossEntropyLoss",
                  "linear head + softmax cross-entropy (chunk_size: no full logits matrix)",
                  params={"bias": Param(True, help="a bias in the linear head"),
                          "chunk_size": Param(None, type=int, min=1,
                                              help="rows per chunk: the (tokens x classes) logits are never "
                                                   "materialised, forward or backward (default: off)"),
                          "label_smoothing": Param(0.0, min=0.0, max=1.0, exclusive_max=True,
                                                   help="target (1 - s) one-hot + s / n_classes")}),
        Component("loss", "mse", "overtone_torch.losses.mse:MSELoss",
                  "linear head regressed onto one-hot targets (mean squared error)",
                  params={"bias": Param(True, help="a bias in the linear head")}),
    ]


@hookimpl
def overtone_optimizers():
    paths = {"foreach": Param(True, help="torch's multi-tensor path (when not fused)"),
             "fused": Param(None, type=bool, help="torch's fused kernel (default: on when every "
                                                  "parameter is on CUDA)")}
    adam_like = {"lr": Param(1e-3, min=0.0, help="learning rate"),
                 "betas": Param([0.9, 0.999], items=float, length=2, min=0.0, max=1.0, exclusive_max=True,
                                help="[beta1, beta2]: moment decay rates"),
                 "eps": Param(1e-8, min=0.0, help="added to sqrt(v)"),
                 "amsgrad": Param(False, help="use the running maximum of v (AMSGrad)")}
    return [
        Component("optimizer", "adamw", "overtone_torch.optimizers:adamw",
                  "torch.optim.AdamW: Adam with decoupled weight decay (foreach / fused)",
                  params={**adam_like, "weight_decay": Param(0.01, min=0.0, help="decoupled: p <- p - lr * wd * p"),
                          **paths}),
        Component("optimizer", "adam", "overtone_torch.optimizers:adam",
                  "torch.optim.Adam (foreach / fused)",
                  params={**adam_like, "weight_decay": Param(0.0, min=0.0, help="L2: wd * p added to the gradient"),
                          **paths}),
        Component("optimizer", "sgd", "overtone_torch.optimizers:sgd",
                  "torch.optim.SGD with optional (Nesterov) momentum (foreach / fused)",
                  params={"lr": Param(0.1, min=0.0, help="learning rate"),
                          "momentum": Param(0.0, min=0.0, help="momentum factor mu"),
                          "dampening": Param(0.0, help="v <- mu v + (1 - dampening) g"),
                          "nesterov": Param(False, help="Nesterov momentum (needs momentum > 0)"),
                          "weight_decay": Param(0.0, min=0.0, help="L2: wd * p added to the gradient"),
                          **paths}),
    ]
