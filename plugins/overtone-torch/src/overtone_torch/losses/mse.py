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

    #: A vectorized pack may hold members of this loss (no ``[loss]`` key differs between them).
    pack_keys: tuple[str, ...] = ()

    def member_values(self) -> dict[str, float]:
        """No per-member values."""
        return {}

    def member_forward(self, params: dict[str, torch.Tensor], features: torch.Tensor, targets: torch.Tensor,
                       values: dict[str, torch.Tensor]) -> torch.Tensor:
        """:meth:`forward` of one member of a pack (under ``vmap``), with the head ``params``.

        The dropped rows are masked instead of indexed out (``vmap`` needs fixed shapes):
        ``sum_{kept i, j} (z_ij - [j = y_i])^2 / (n_kept V)``, the same value.
        """
        scores = F.linear(features.reshape(-1, features.shape[-1]), params["weight"], params.get("bias"))
        scores = scores.to(accumulation_dtype(scores.dtype))
        if targets.is_floating_point():
            return F.mse_loss(scores, targets.reshape(len(scores), -1).to(scores.dtype))
        t = targets.reshape(-1)
        keep = t != IGNORE
        onehot = F.one_hot(torch.where(keep, t, 0), self.n_classes).to(scores.dtype)
        squared = ((scores - onehot) ** 2 * keep.unsqueeze(-1)).sum()
        return squared / (keep.sum().clamp_min(1) * self.n_classes)
