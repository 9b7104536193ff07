"""Loss ``loss-weighted-cross-entropy``: up-weight the examples the network still gets wrong.

The loss re-weighting in the reference code of Liu et al., "Physics of skill learning"
(arXiv 2501.12391, ``scripts/Fig19_modularity.ipynb``): each example's loss ``l_i`` is
multiplied by the stop-gradient weight ``w_i = l_i^gamma / mean_j l_j^gamma`` (there
``gamma = 1``), so the gradient is ``mean_i w_i grad l_i``: examples of skills not yet learned
(high loss, in practice the rare ones) pull harder, which the Resource model reads as giving
them a larger share of the update. ``gamma = 0`` is plain cross-entropy. In evaluation mode
(``module.eval()``, as the torch engine evaluates) the forward pass is the plain mean
cross-entropy, so reported losses stay comparable with other runs. Targets ``-100`` are ignored.
Scores are ``z = x W^T + b`` with ``W ~ N(0, 1 / d_in)`` and ``b = 0``, as overtone-torch's
``cross-entropy``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from overtone import ConfigError
from torch import nn

IGNORE = -100


class LossWeightedCrossEntropy(nn.Module):
    """Cross-entropy whose per-example terms are weighted by ``l_i^gamma / mean l^gamma``."""

    def __init__(self, *, d_in: int, n_classes: int, gamma: float = 1.0, bias: bool = True) -> None:
        super().__init__()
        if d_in < 1 or n_classes < 2:
            raise ConfigError(f"[loss] the head needs d_in >= 1 and n_classes >= 2 "
                              f"(got {d_in}, {n_classes})")
        if gamma < 0:
            raise ConfigError(f"[loss] gamma = {gamma} must be >= 0 (0: plain cross-entropy)")
        self.weight = nn.Parameter(torch.randn(n_classes, d_in) * d_in**-0.5)
        self.bias = nn.Parameter(torch.zeros(n_classes)) if bias else None
        self.gamma = float(gamma)

    def scores(self, features: torch.Tensor) -> torch.Tensor:
        """Logits ``features W^T + b``, shape ``(..., n_classes)``."""
        return F.linear(features, self.weight, self.bias)

    def forward(self, features: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Training: ``mean_i w_i l_i`` over kept targets; evaluation: ``mean_i l_i``."""
        x, t = features.reshape(-1, features.shape[-1]), targets.reshape(-1)
        keep = t != IGNORE
        scores = self.scores(x[keep])
        if scores.dtype in (torch.float16, torch.bfloat16):  # accumulate in float32
            scores = scores.float()
        per_example = F.cross_entropy(scores, t[keep], reduction="none")
        if not self.training or self.gamma == 0.0:
            return per_example.mean()
        weight = per_example.detach() ** self.gamma
        weight = weight / weight.mean().clamp_min(torch.finfo(weight.dtype).tiny)
        return (weight * per_example).mean()

    def extra_repr(self) -> str:
        return (f"d_in={self.weight.shape[1]}, n_classes={self.weight.shape[0]}, "
                f"gamma={self.gamma}, bias={self.bias is not None}")
