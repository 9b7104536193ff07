"""Vector classification tasks: scikit-learn's digits and a Gaussian mixture."""

from __future__ import annotations

import torch
from overtone import ConfigError

from overtone_torch.tasks.base import TensorTask, check_fraction, check_positive


def random_split(x: torch.Tensor, y: torch.Tensor, seed: int, train_fraction: float):
    """A seeded random permutation: the first ``round(train_fraction * n)`` train, the rest evaluate."""
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    n_train = int(round(train_fraction * len(y)))
    return x[order[:n_train]], y[order[:n_train]], x[order[n_train:]], y[order[n_train:]]


#: What the ``digits`` task's targets are.
DIGITS_TARGETS = ("classes", "reconstruction")


class Digits(TensorTask):
    """scikit-learn's bundled 8x8 handwritten digits (UCI; 1,797 images, 10 classes).

    Pixels (0-16) are scaled to ``[0, 1]`` and flattened to 64-vectors; the split is random
    under ``seed``. The data ship inside scikit-learn: nothing is downloaded.

    ``target = "classes"``: the digit 0-9 is the target (``n_classes = 10``).
    ``target = "reconstruction"``: the image itself is the target, an auto-encoder's task
    (``target = "regression"`` for the engine, ``n_outputs = 64``, ``n_classes = None``; the
    loss must take real targets, e.g. ``mse``). The split is the same under one seed either way.
    """

    def __init__(self, *, seed: int, train_fraction: float = 0.8, target: str = "classes") -> None:
        from sklearn.datasets import load_digits

        check_fraction("train_fraction", train_fraction)
        if target not in DIGITS_TARGETS:
            raise ConfigError(f"[task] target = {target!r}; allowed: {', '.join(DIGITS_TARGETS)}")
        data = load_digits()
        x = torch.tensor(data.data, dtype=torch.float32) / 16.0
        y = torch.tensor(data.target, dtype=torch.long)
        x_train, y_train, x_eval, y_eval = random_split(x, y, seed, train_fraction)
        self.reconstruction = target == "reconstruction"
        if self.reconstruction:
            super().__init__(x_train, x_train.clone(), x_eval, x_eval.clone())
            self.target, self.n_outputs, self.n_classes = "regression", 64, None
        else:
            super().__init__(x_train, y_train, x_eval, y_eval)
            self.n_classes = 10
        self.input_spec = {"kind": "vector", "dim": 64, "output": "pooled"}

    def describe(self) -> dict[str, object]:
        return {"source": "sklearn.datasets.load_digits", "examples": len(self.y["train"]) + len(self.y["eval"]),
                "target": "reconstruction" if self.reconstruction else "classes"}


class GaussianMixture(TensorTask):
    """Synthetic classes: example ``i`` has class ``k = i mod n_classes`` and ``x ~ N(mu_k, I_dim)``.

    The means are ``mu_k = separation * g_k / sqrt(dim)`` with ``g_k ~ N(0, I_dim)``, so
    ``|mu_k| ~ separation`` and the classes overlap less as ``separation`` grows. Means,
    samples and the split are all drawn under ``seed``.
    """

    def __init__(self, *, seed: int, n_classes: int = 4, dim: int = 16, n_samples: int = 2000,
                 separation: float = 3.0, train_fraction: float = 0.8) -> None:
        check_positive("n_classes", n_classes, 2)
        check_positive("dim", dim)
        check_positive("n_samples", n_samples, 2 * n_classes)
        check_fraction("train_fraction", train_fraction)
        if separation < 0:
            raise ConfigError(f"[task] separation = {separation} must be >= 0")
        g = torch.Generator().manual_seed(seed)
        means = separation * torch.randn(n_classes, dim, generator=g) / dim**0.5
        y = torch.arange(n_samples) % n_classes
        x = means[y] + torch.randn(n_samples, dim, generator=g)
        super().__init__(*random_split(x, y, seed, train_fraction))
        self.means, self.separation = means, separation
        self.input_spec = {"kind": "vector", "dim": dim, "output": "pooled"}
        self.n_classes = n_classes

    def describe(self) -> dict[str, object]:
        return {"n_classes": self.n_classes, "dim": self.input_spec["dim"], "separation": self.separation}
