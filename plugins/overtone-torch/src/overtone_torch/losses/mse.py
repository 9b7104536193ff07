"""Mean squared error of a linear head against one-hot targets, or against real targets."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from overtone_torch.losses.chunked import IGNORE, accumulation_dtype
from overtone_torch.losses.cross_entropy import linear_head


class MSELoss(nn.Module):
    """Scores ``z = x W^T + b`` regressed onto one-hot targets: ``mean_{i,j} (z_ij - [j = y_i])^2``.

    The mean runs over kept rows (targets ``-100`` dropped) and all ``V`` classes, as
    ``F.mse_loss`` does; ``scores`` are the raw outputs (argmax = prediction). Float targets
    (a task with ``target = "regression"``, ``n_classes`` = its ``n_outputs``) are regressed on
    directly: ``mean_{i,j} (z_ij - y_ij)^2``, with ``y`` of shape ``(N,)`` or ``(N, n_outputs)``.
    """

    regression = True  # takes real-valued targets too

    def __init__(self, *, d_in: int, n_classes: int, bias: bool = True) -> None:
        super().__init__()
        self.n_classes = n_classes
        self.weight, self.bias = linear_head(d_in, n_classes, bias, minimum=1)

    def scores(self, features: torch.Tensor) -> torch.Tensor:
        """Outputs ``features W^T + b``, shape ``(..., n_classes)``."""
        return F.linear(features, self.weight, self.bias)

    def forward(self, features: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean squared error against one-hot targets, over kept rows and all classes (or
        against real targets, over all rows and outputs)."""
        if targets.is_floating_point():
            scores = self.scores(features.reshape(-1, features.shape[-1]))
            scores = scores.to(accumulation_dtype(scores.dtype))
            return F.mse_loss(scores, targets.reshape(len(scores), -1).to(scores.dtype))
        x, t = features.reshape(-1, features.shape[-1]), targets.reshape(-1)
        keep = t != IGNORE
        scores = self.scores(x[keep])
        scores = scores.to(accumulation_dtype(scores.dtype))
        return F.mse_loss(scores, F.one_hot(t[keep], self.n_classes).to(scores.dtype))
