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
    """Mean loss per target and accuracy ``argmax(scores) == target`` over ``batches`` (NaN
    for real-valued targets, where accuracy has no meaning).

    Each batch's mean loss is weighted by its number of kept targets, so the result is
    the mean over every target of the split (not a mean of batch means).
    """
    total_loss = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    count = 0
    for x, y in batches:
        x, y = x.to(device), y.to(device)
        features = net.model(x)
        if y.is_floating_point():  # real targets (regression): no accuracy
            n = len(y)
            total_loss += net.loss(features, y).double() * n
            count, correct = count + n, None
            continue
        keep = y != IGNORE
        n = int(keep.sum())
        if n == 0:
            continue
        total_loss += net.loss(features, y).double() * n
        correct += ((net.loss.scores(features).argmax(-1) == y) & keep).sum()
        count += n
    accuracy = float("nan") if correct is None else correct.item() / max(count, 1)
    return total_loss.item() / max(count, 1), accuracy


@torch.no_grad()
def evaluate_by_skill(net: torch.nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
                      device: torch.device, skill_of: Any, n_skills: int) -> tuple[list[float], list[float]]:
    """Mean loss and accuracy per skill: ``skill_of(x)`` gives each example's skill index.

    Uses only the loss contract (a scalar mean over the targets passed): each skill's examples
    of a batch are scored separately and weighted by their number, so skill k's value is its
    mean over every one of its examples in the split. A skill with no examples gets NaN.
    """
    total = torch.zeros(n_skills, dtype=torch.float64)
    correct = torch.zeros(n_skills, dtype=torch.float64)
    count = torch.zeros(n_skills, dtype=torch.float64)
    for x, y in batches:
        skills = skill_of(x).cpu()
        x, y = x.to(device), y.to(device)
        features = net.model(x)
        hits = (net.loss.scores(features).argmax(-1) == y).cpu()
        for k in skills.unique().tolist():
            mask = skills == k
            n = int(mask.sum())
            total[k] += net.loss(features[mask.to(device)], y[mask.to(device)]).double().cpu() * n
            correct[k] += hits[mask].sum()
            count[k] += n
    return (total / count).tolist(), (correct / count).tolist()


def train_sample(task: Any, batch_size: int, seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """A fixed sample of the training split (all of it up to 4096 examples), ``batch_size`` at a time.

    Drawn with its own generator seeded from the run's seed, so it is the same at every
    evaluation and does not disturb the training data order.
    """
    n = min(task.train_size or 512, TRAIN_SAMPLE)
    x, y = task.sample_batch("train", n, torch.Generator().manual_seed(seed + 7))
    for start in range(0, len(y), batch_size):
        yield x[start:start + batch_size], y[start:start + batch_size]
