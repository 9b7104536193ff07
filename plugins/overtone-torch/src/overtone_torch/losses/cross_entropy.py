"""Cross-entropy on a linear head, optionally computed without materialising the logits."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from overtone import ConfigError
from torch import nn

from overtone_torch.losses.chunked import IGNORE, accumulation_dtype, chunked_linear_cross_entropy


def linear_head(d_in: int, n_classes: int, bias: bool, *,
                minimum: int = 2) -> tuple[nn.Parameter, nn.Parameter | None]:
    """A head ``W ~ N(0, 1/d_in)`` of shape ``(n_classes, d_in)`` and a zero bias (or None);
    ``minimum`` is the fewest outputs the head may have (2 classes; 1 output for regression)."""
    if d_in < 1 or n_classes < minimum:
        raise ConfigError(f"[loss] the head needs d_in >= 1 and n_classes >= {minimum} "
                          f"(got {d_in}, {n_classes})")
    weight = nn.Parameter(torch.randn(n_classes, d_in) * d_in**-0.5)
    return weight, (nn.Parameter(torch.zeros(n_classes)) if bias else None)


class CrossEntropyLoss(nn.Module):
    """Scores ``z = x W^T + b``; loss ``-sum_j q_j log softmax(z)_j`` averaged over kept targets.

    ``q`` is the one-hot target, or ``(1 - label_smoothing) e_y + label_smoothing / V``
    (Szegedy et al. 2016). Targets equal to ``-100`` are ignored. With ``chunk_size``, the
    loss and its gradients are computed ``chunk_size`` rows at a time, both in the forward
    pass, by :func:`~overtone_torch.losses.chunked.chunked_linear_cross_entropy`: the
    ``(N, V)`` logits matrix never exists (language models with large vocabularies), the
    three matrix products are those of the plain path, and the gradients of the features and
    the head are held from the forward to the backward pass. ``weight`` is the head
    ``(n_classes, d_in)`` the engine may tie to a token embedding.
    """

    def __init__(self, *, d_in: int, n_classes: int, bias: bool = True, chunk_size: int | None = None,
                 label_smoothing: float = 0.0) -> None:
        super().__init__()
        if chunk_size is not None and chunk_size < 1:
            raise ConfigError(f"[loss] chunk_size = {chunk_size} must be at least 1 (or left out for no chunking)")
        if not 0.0 <= label_smoothing < 1.0:
            raise ConfigError(f"[loss] label_smoothing = {label_smoothing} must be in [0, 1)")
        self.weight, self.bias = linear_head(d_in, n_classes, bias)
        self.chunk_size, self.label_smoothing = chunk_size, float(label_smoothing)

    def scores(self, features: torch.Tensor) -> torch.Tensor:
        """Logits ``features W^T + b``, shape ``(..., n_classes)``."""
        return F.linear(features, self.weight, self.bias)

    def forward(self, features: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy over the targets that are not ``-100``."""
        x, t = features.reshape(-1, features.shape[-1]), targets.reshape(-1)
        if self.chunk_size:
            return chunked_linear_cross_entropy(x, self.weight, self.bias, t, self.chunk_size,
                                                self.label_smoothing, mean=True)
        scores = self.scores(x)
        return F.cross_entropy(scores.to(accumulation_dtype(scores.dtype)), t, ignore_index=IGNORE,
                               label_smoothing=self.label_smoothing)

    #: ``[loss]`` keys that may differ between the members of a vectorized pack.
    pack_keys = ("label_smoothing",)

    def member_values(self) -> dict[str, float]:
        """This member's per-member values for :meth:`member_forward`."""
        return {"label_smoothing": self.label_smoothing}

    def member_forward(self, params: dict[str, torch.Tensor], features: torch.Tensor, targets: torch.Tensor,
                       values: dict[str, torch.Tensor]) -> torch.Tensor:
        """The loss of one member of a pack (under ``vmap``): the head ``params`` and the per-member
        ``values`` as tensors (:func:`member_cross_entropy`)."""
        return member_cross_entropy(features, targets, params["weight"], params.get("bias"),
                                    values["label_smoothing"])

    def extra_repr(self) -> str:
        return (f"d_in={self.weight.shape[1]}, n_classes={self.weight.shape[0]}, bias={self.bias is not None}, "
                f"chunk_size={self.chunk_size}, label_smoothing={self.label_smoothing}")


def member_cross_entropy(features: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor,
                         bias: torch.Tensor | None, label_smoothing: torch.Tensor) -> torch.Tensor:
    """The cross-entropy loss's forward with ``label_smoothing`` a tensor (one member's, under vmap).

    ``-sum_j q_j log softmax(x W^T + b)_j`` with ``q = (1 - s) e_y + s / V``, i.e.
    ``(1 - s) nll + s mean_j(-log p_j)``, averaged over targets that are not ``-100`` (as
    ``torch.nn.functional.cross_entropy`` with ``label_smoothing = s``).
    """
    x, t = features.reshape(-1, features.shape[-1]), targets.reshape(-1)
    scores = F.linear(x, weight, bias)
    logp = torch.log_softmax(scores.to(accumulation_dtype(scores.dtype)), -1)
    keep = t != IGNORE
    nll = -logp.gather(-1, torch.where(keep, t, 0).unsqueeze(-1)).squeeze(-1)
    per_target = (1 - label_smoothing) * nll - label_smoothing * logp.mean(-1)
    return (per_target * keep).sum() / keep.sum().clamp_min(1)
