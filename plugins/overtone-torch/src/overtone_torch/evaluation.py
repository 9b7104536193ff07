"""Evaluation: mean loss and accuracy over a split, targets equal to -100 ignored."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import torch

IGNORE = -100
#: Training examples (or sequences) in the fixed sample that measures train_loss / train_acc.
TRAIN_SAMPLE = 4096


@torch.no_grad()
def evaluate(net: torch.nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
             device: torch.device) -> tuple[float, float]:
    """Mean loss per target and accuracy ``argmax(scores) == target`` over ``batches``.

    Each batch's mean loss is weighted by its number of kept targets, so the result is
    the mean over every target of the split (not a mean of batch means).
    """
    total_loss = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    count = 0
    for x, y in batches:
        x, y = x.to(device), y.to(device)
        features = net.model(x)
        keep = y != IGNORE
        n = int(keep.sum())
        if n == 0:
            continue
        total_loss += net.loss(features, y).double() * n
        correct += ((net.loss.scores(features).argmax(-1) == y) & keep).sum()
        count += n
    return total_loss.item() / max(count, 1), correct.item() / max(count, 1)


def train_sample(task: Any, batch_size: int, seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """A fixed sample of the training split (all of it up to 4096 examples), ``batch_size`` at a time.

    Drawn with its own generator seeded from the run's seed, so it is the same at every
    evaluation and does not disturb the training data order.
    """
    n = min(task.train_size or 512, TRAIN_SAMPLE)
    x, y = task.sample_batch("train", n, torch.Generator().manual_seed(seed + 7))
    for start in range(0, len(y), batch_size):
        yield x[start:start + batch_size], y[start:start + batch_size]
