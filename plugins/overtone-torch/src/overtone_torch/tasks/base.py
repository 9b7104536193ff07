"""A finite classification data set held in memory, with seeded batch sampling."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from overtone import ConfigError


def check_fraction(name: str, value: float) -> None:
    """Raise ConfigError unless ``0 < value < 1``."""
    if not 0.0 < value < 1.0:
        raise ConfigError(f"[task] {name} = {value} must be strictly between 0 and 1")


def check_positive(name: str, value: int, minimum: int = 1) -> None:
    """Raise ConfigError unless ``value`` is an integer of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"[task] {name} = {value!r} must be an integer >= {minimum}")


class TensorTask:
    """Train/eval tensors ``(x, y)`` held in memory (the ``task_api`` contract).

    A training batch is ``batch_size`` distinct examples drawn uniformly with the engine's
    generator (``batch_size >= train_size`` gives the whole training set, in order);
    ``train_size`` lets the engine reject a ``batch_size`` larger than the training set.
    """

    input_spec: dict[str, Any]
    n_classes: int

    def __init__(self, x_train, y_train, x_eval, y_eval) -> None:
        self.x = {"train": x_train, "eval": x_eval}
        self.y = {"train": y_train, "eval": y_eval}
        if len(y_train) == 0 or len(y_eval) == 0:
            raise ConfigError("[task]: the split leaves no training or no evaluation examples; "
                              "change train_fraction or the data size")

    @property
    def train_size(self) -> int:
        return len(self.y["train"])

    def sample_batch(self, split: str, batch_size: int, generator: torch.Generator):
        """A random batch of distinct examples of ``split`` ("train" or "eval")."""
        n = len(self.y[split])
        if batch_size >= n:
            index = torch.arange(n)
        else:
            index = torch.randperm(n, generator=generator)[:batch_size]
        return self.x[split][index], self.y[split][index]

    def eval_batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The whole evaluation split in order, ``batch_size`` examples at a time."""
        x, y = self.x["eval"], self.y["eval"]
        for start in range(0, len(y), batch_size):
            yield x[start:start + batch_size], y[start:start + batch_size]

    def probe_batch(self, n: int):
        """The first ``n`` evaluation examples (a fixed batch for hidden-state probes)."""
        return self.x["eval"][:n], self.y["eval"][:n]

    def input_grid(self):
        return None

    def token_labels(self):
        return None

    def describe(self) -> dict[str, Any]:
        return {}
