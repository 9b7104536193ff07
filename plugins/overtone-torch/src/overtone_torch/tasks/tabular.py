"""Vector classification tasks: scikit-learn's digits and a Gaussian mixture."""

from __future__ import annotations

import torch
from overtone import ConfigError

from overtone_torch.tasks.base import TensorTask, check_fraction


def _split(x: torch.Tensor, y: torch.Tensor, seed: int, train_fraction: float):
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    n_train = int(round(train_fraction * len(y)))
    return x[order[:n_train]], y[order[:n_train]], x[order[n_train:]], y[order[n_train:]]


class Digits(TensorTask):
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes), pixels scaled to [0, 1]."""

    def __init__(self, *, seed: int, train_fraction: float = 0.8) -> None:
        from sklearn.datasets import load_digits

        check_fraction("train_fraction", train_fraction)
        data = load_digits()
        x = torch.tensor(data.data, dtype=torch.float32) / 16.0
        y = torch.tensor(data.target, dtype=torch.long)
        super().__init__(*_split(x, y, seed, train_fraction))
        self.input_spec = {"kind": "vector", "dim": 64, "output": "pooled"}
        self.n_classes = 10

    def describe(self):
        return {"source": "sklearn.datasets.load_digits"}


class GaussianMixture(TensorTask):
    """Class ``k`` draws ``x ~ N(mu_k, I)`` with ``mu_k ~ separation * N(0, I/dim)``."""

    def __init__(self, *, seed: int, n_classes: int = 4, dim: int = 16, n_samples: int = 2000,
                 separation: float = 3.0, train_fraction: float = 0.8) -> None:
        check_fraction("train_fraction", train_fraction)
        if n_classes < 2 or dim < 1 or n_samples < 2 * n_classes:
            raise ConfigError("[task] gaussian-mixture needs n_classes >= 2, dim >= 1, n_samples >= 2 * n_classes")
        g = torch.Generator().manual_seed(seed)
        means = separation * torch.randn(n_classes, dim, generator=g) / dim**0.5
        y = torch.arange(n_samples) % n_classes
        x = means[y] + torch.randn(n_samples, dim, generator=g)
        super().__init__(*_split(x, y, seed, train_fraction))
        self.input_spec = {"kind": "vector", "dim": dim, "output": "pooled"}
        self.n_classes = n_classes

    def describe(self):
        return {"n_classes": self.n_classes}
