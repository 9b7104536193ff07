"""Learning-rate schedules as multipliers of the base rate."""

from __future__ import annotations

import math


def lr_factor(step: int, *, total: int, warmup_steps: int, decay: str, min_lr_ratio: float) -> float:
    """Linear warm-up to 1 over ``warmup_steps``, then constant or cosine decay to ``min_lr_ratio``.

    cosine: ``r + (1 - r) * (1 + cos(pi * s)) / 2`` with ``s`` the fraction of post-warm-up steps done.
    """
    if warmup_steps and step < warmup_steps:
        return (step + 1) / warmup_steps
    if decay == "constant":
        return 1.0
    progress = (step - warmup_steps) / max(1, total - warmup_steps)
    return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
