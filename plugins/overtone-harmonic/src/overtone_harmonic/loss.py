"""The harmonic loss (Baek et al. 2025, arXiv 2502.01628).

The head holds one centre ``w_i`` per class. With ``d_i = ||x - w_i||_2``,

    p_i = d_i^-n / sum_j d_j^-n,     loss = -log p_y,

computed in log space as a softmax over ``logits_i = -n log d_i = -(n/2) log d_i^2``, with
``d_i^2 = ||x||^2 + ||w_i||^2 - 2 x.w_i`` (one matrix product) floored at ``eps``.

Exponent convention: ``n`` here is the paper's, on the distance. The public reference code
raises the *squared* distance to ``-n``, so its ``n`` is half of ours; ``convention =
"squared"`` takes a reference-style value. The default, ``n = 2 sqrt(d_in)`` on ``d``, is the
reference's ``sqrt(D)`` on ``d^2`` (its MNIST choice: 28 = sqrt(784)).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

IGNORE = -100


def squared_distances(x: torch.Tensor, w: torch.Tensor, eps: float) -> torch.Tensor:
    """``||x_r - w_i||^2`` for every row and centre, through one matrix product, floored at ``eps``."""
    d2 = (x * x).sum(-1, keepdim=True) + (w * w).sum(-1) - 2.0 * (x @ w.T)
    return d2.clamp_min(eps)


def harmonic_logits(x: torch.Tensor, w: torch.Tensor, n: float, eps: float = 1e-12) -> torch.Tensor:
    """``-n log d_i = -(n/2) log d_i^2``; ``softmax`` of these is the harmonic probability."""
    return -0.5 * n * torch.log(squared_distances(x, w, eps))


class _ChunkedHarmonic(torch.autograd.Function):
    """Summed harmonic loss ``sum_r [lse(logits_r) - logits_r,y_r]``, ``chunk`` rows at a time.

    Forward keeps one log-sum-exp per row. Backward recomputes each chunk's distances and uses
    ``dL/dd2 = (softmax - onehot) * (-(n/2) / d2)`` (zero where the floor is active), then
    ``dd2/dx = 2 (x - w)`` and ``dd2/dw = 2 (w - x)``: no (N, V) tensor outlives a chunk.
    """

    @staticmethod
    def forward(ctx, x, w, targets, n: float, eps: float, chunk: int):
        acc = torch.promote_types(torch.float32, x.dtype)
        lse = torch.empty(x.shape[0], dtype=acc, device=x.device)
        total = torch.zeros((), dtype=acc, device=x.device)
        valid = targets != IGNORE
        for s in range(0, x.shape[0], chunk):
            logits = harmonic_logits(x[s:s + chunk].to(acc), w.to(acc), n, eps)
            lse[s:s + chunk] = torch.logsumexp(logits, dim=1)
            picked = logits.gather(1, targets[s:s + chunk].clamp_min(0)[:, None])[:, 0]
            total = total + ((lse[s:s + chunk] - picked) * valid[s:s + chunk]).sum()
        ctx.save_for_backward(x, w, targets, lse)
        ctx.n, ctx.eps, ctx.chunk = n, eps, chunk
        return total

    @staticmethod
    def backward(ctx, grad_total):
        x, w, targets, lse = ctx.saved_tensors
        acc = lse.dtype
        wa = w.to(acc)
        gx = torch.zeros_like(x, dtype=acc)
        gw = torch.zeros_like(w, dtype=acc)
        valid = (targets != IGNORE).to(acc)
        for s in range(0, x.shape[0], ctx.chunk):
            xs = x[s:s + ctx.chunk].to(acc)
            raw = (xs * xs).sum(-1, keepdim=True) + (wa * wa).sum(-1) - 2.0 * (xs @ wa.T)
            d2 = raw.clamp_min(ctx.eps)
            g = torch.exp(-0.5 * ctx.n * torch.log(d2) - lse[s:s + ctx.chunk, None])  # softmax
            g.scatter_add_(1, targets[s:s + ctx.chunk].clamp_min(0)[:, None], -torch.ones_like(g[:, :1]))
            g = g * (valid[s:s + ctx.chunk, None] * grad_total)
            g = g * (-0.5 * ctx.n) / d2 * (raw > ctx.eps)  # through log d2 and the floor
            gx[s:s + ctx.chunk] = 2.0 * (g.sum(1, keepdim=True) * xs - g @ wa)
            gw += 2.0 * (g.sum(0)[:, None] * wa - g.T @ xs)
        return gx.to(x.dtype), gw.to(w.dtype), None, None, None, None


def chunked_harmonic_loss(x, w, targets, n: float, eps: float, chunk: int) -> torch.Tensor:
    """Summed harmonic loss over rows without materialising the (N, V) logits."""
    return _ChunkedHarmonic.apply(x, w, targets, n, eps, chunk)


class HarmonicLoss(nn.Module):
    """Distance-based output head with the harmonic loss; ``self.weight`` holds the class centres.

    ``forward(features, targets)`` is the mean of ``-log p_y`` over targets that are not -100;
    ``scores(features)`` are the harmonic logits ``-n log d_i`` (argmax = nearest centre).
    """

    def __init__(self, *, d_in: int, n_classes: int, n: float | None = None, convention: str = "distance",
                 chunk_size: int | None = None, eps: float = 1e-12) -> None:
        super().__init__()
        from overtone import ConfigError

        if convention not in ("distance", "squared"):
            raise ConfigError(f"[loss] convention = {convention!r}; allowed: 'distance', 'squared'")
        exponent = 2.0 * math.sqrt(d_in) if n is None else float(n) * (2.0 if convention == "squared" else 1.0)
        if exponent <= 0:
            raise ConfigError(f"[loss] n = {n} must be positive")
        if chunk_size is not None and chunk_size < 1:
            raise ConfigError(f"[loss] chunk_size = {chunk_size} must be at least 1")
        self.n, self.eps, self.chunk_size = exponent, eps, chunk_size
        self.weight = nn.Parameter(torch.randn(n_classes, d_in) / math.sqrt(d_in))

    def scores(self, features: torch.Tensor) -> torch.Tensor:
        shape = features.shape[:-1]
        x = features.reshape(-1, features.shape[-1])
        w = self.weight.to(x.dtype)
        return harmonic_logits(x, w, self.n, self.eps).reshape(*shape, -1)

    def forward(self, features: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        x, t = features.reshape(-1, features.shape[-1]), targets.reshape(-1)
        if x.dtype in (torch.float16, torch.bfloat16):
            x = x.float()
        if self.chunk_size:
            count = (t != IGNORE).sum().clamp_min(1)
            return chunked_harmonic_loss(x, self.weight, t, self.n, self.eps, self.chunk_size) / count
        logits = harmonic_logits(x, self.weight.to(x.dtype), self.n, self.eps)
        return F.cross_entropy(logits, t, ignore_index=IGNORE)
