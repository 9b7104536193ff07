"""Cross-entropy on a linear head, optionally without materialising the logits."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

IGNORE = -100


def _upcast(t: torch.Tensor) -> torch.Tensor:
    """Half-precision scores are reduced in float32; float32/float64 stay as they are."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


class _ChunkedLinearCrossEntropy(torch.autograd.Function):
    """``sum_i [logsumexp(x_i W^T + b) - (x_i W^T + b)_{y_i}]`` computed ``chunk`` rows at a time.

    Forward keeps only each row's log-sum-exp; backward recomputes each chunk's logits,
    forms ``softmax - onehot`` and accumulates the gradients, so no ``(N, V)`` tensor is
    ever held beyond one ``(chunk, V)`` block.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, targets, chunk: int):
        acc = torch.promote_types(torch.float32, x.dtype)
        lse = torch.empty(x.shape[0], dtype=acc, device=x.device)
        total = x.new_zeros((), dtype=acc)
        valid = targets != IGNORE
        for s in range(0, x.shape[0], chunk):
            logits = (x[s:s + chunk] @ weight.T).to(acc)
            if bias is not None:
                logits = logits + bias.to(acc)
            lse[s:s + chunk] = torch.logsumexp(logits, dim=1)
            t = targets[s:s + chunk].clamp_min(0)
            picked = logits.gather(1, t[:, None])[:, 0]
            total = total + ((lse[s:s + chunk] - picked) * valid[s:s + chunk]).sum()
        ctx.save_for_backward(x, weight, bias, targets, lse)
        ctx.chunk = chunk
        return total

    @staticmethod
    def backward(ctx, grad_total):
        x, weight, bias, targets, lse = ctx.saved_tensors
        acc = lse.dtype
        gx = torch.zeros_like(x)
        gw = torch.zeros_like(weight, dtype=acc)
        gb = None if bias is None else torch.zeros_like(bias, dtype=acc)
        valid = (targets != IGNORE).to(acc)
        for s in range(0, x.shape[0], ctx.chunk):
            xs = x[s:s + ctx.chunk]
            logits = (xs @ weight.T).to(acc)
            if bias is not None:
                logits = logits + bias.to(acc)
            g = torch.exp(logits - lse[s:s + ctx.chunk, None])
            t = targets[s:s + ctx.chunk].clamp_min(0)
            g.scatter_add_(1, t[:, None], -torch.ones_like(g[:, :1]))
            g = g * (valid[s:s + ctx.chunk, None] * grad_total)
            gx[s:s + ctx.chunk] = (g.to(x.dtype) @ weight).to(x.dtype)
            gw += g.T @ xs.to(acc)
            if gb is not None:
                gb += g.sum(0)
        return gx, gw.to(weight.dtype), None if gb is None else gb.to(bias.dtype), None, None


def chunked_linear_cross_entropy(x, weight, bias, targets, chunk: int) -> torch.Tensor:
    """Summed cross-entropy of ``x W^T + b`` against ``targets`` without an ``(N, V)`` logits tensor."""
    return _ChunkedLinearCrossEntropy.apply(x, weight, bias, targets, chunk)


class CrossEntropyLoss(nn.Module):
    """A linear head ``scores = x W^T + b`` and the loss ``-log softmax(scores)_y``, mean over targets."""

    def __init__(self, *, d_in: int, n_classes: int, bias: bool = True, chunk_size: int | None = None,
                 label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_classes, d_in) * d_in**-0.5)
        self.bias = nn.Parameter(torch.zeros(n_classes)) if bias else None
        self.chunk_size, self.label_smoothing = chunk_size, label_smoothing
        if chunk_size is not None and label_smoothing:
            from overtone import ConfigError

            raise ConfigError("[loss] cross-entropy: chunk_size does not support label_smoothing yet; set one of them")

    def scores(self, features: torch.Tensor) -> torch.Tensor:
        return F.linear(features, self.weight, self.bias)

    def forward(self, features: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        x, t = features.reshape(-1, features.shape[-1]), targets.reshape(-1)
        if self.chunk_size:
            count = (t != IGNORE).sum().clamp_min(1)
            return chunked_linear_cross_entropy(x, self.weight, self.bias, t, self.chunk_size) / count
        return F.cross_entropy(_upcast(self.scores(x)), t, ignore_index=IGNORE,
                               label_smoothing=self.label_smoothing)


class MSELoss(nn.Module):
    """A linear head regressed onto one-hot targets: ``mean_i ||x_i W^T + b - e_{y_i}||^2 / V``."""

    def __init__(self, *, d_in: int, n_classes: int) -> None:
        super().__init__()
        self.n_classes = n_classes
        self.weight = nn.Parameter(torch.randn(n_classes, d_in) * d_in**-0.5)
        self.bias = nn.Parameter(torch.zeros(n_classes))

    def scores(self, features: torch.Tensor) -> torch.Tensor:
        return F.linear(features, self.weight, self.bias)

    def forward(self, features: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        x, t = features.reshape(-1, features.shape[-1]), targets.reshape(-1)
        keep = t != IGNORE
        scores = _upcast(self.scores(x[keep]))
        return F.mse_loss(scores, F.one_hot(t[keep], self.n_classes).to(scores.dtype))
