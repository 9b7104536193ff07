"""Linear head + softmax cross-entropy computed in row chunks: no ``(N, V)`` logits tensor.

For rows ``x_i`` (``N x d``), a head ``W`` (``V x d``) and bias ``b``, the logits are
``z_i = W x_i + b`` and, with label smoothing ``eps`` (target distribution
``q = (1 - eps) e_y + eps / V``), the summed loss is

    L = sum_{i kept} [ logsumexp(z_i) - (1 - eps) z_{i,y_i} - eps * mean_j z_{i,j} ]

with ``dL/dz_i = softmax(z_i) - q_i``. The forward pass keeps only each row's log-sum-exp;
the backward pass recomputes one ``(chunk, V)`` block of logits at a time, so peak memory
for the head is ``O(chunk * V)`` instead of ``O(N * V)`` in both passes.
"""

from __future__ import annotations

import torch

IGNORE = -100


def accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 stays float64; every other floating dtype is reduced in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _autocast_dtype(device_type: str) -> torch.dtype | None:
    """The autocast dtype active for ``device_type``, or None when autocast is off."""
    try:
        if not torch.is_autocast_enabled(device_type):
            return None
        return torch.get_autocast_dtype(device_type)
    except (TypeError, AttributeError):  # torch < 2.4: the older per-device functions
        if device_type == "cpu":
            return torch.get_autocast_cpu_dtype() if torch.is_autocast_cpu_enabled() else None
        return torch.get_autocast_gpu_dtype() if torch.is_autocast_enabled() else None


def _block(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, acc: torch.dtype) -> torch.Tensor:
    """Logits ``x W^T + b`` of one chunk, in the accumulation dtype."""
    z = (x @ weight.T).to(acc)
    return z if bias is None else z + bias.to(acc)


class ChunkedLinearCrossEntropy(torch.autograd.Function):
    """Autograd function for the summed chunked cross-entropy (see the module docstring).

    Inputs ``x (N, d)``, ``weight (V, d)``, ``bias (V,) | None``, ``targets (N,)`` int64
    (``-100`` ignored), ``chunk`` rows per block, ``smoothing`` in ``[0, 1)``. Returns the
    sum over kept rows (the caller divides by their count for the mean). The matrix products
    run in the autocast dtype when autocast is on (as ``F.linear`` would), in the inputs'
    promoted dtype otherwise; reductions run in float32 (float64 for float64 inputs).
    """

    @staticmethod
    def forward(ctx, x, weight, bias, targets, chunk: int, smoothing: float):
        mm = _autocast_dtype(x.device.type) or torch.promote_types(x.dtype, weight.dtype)
        acc = accumulation_dtype(mm)
        n, n_classes = x.shape[0], weight.shape[0]
        lse = torch.empty(n, dtype=acc, device=x.device)
        total = torch.zeros((), dtype=acc, device=x.device)
        with torch.autocast(x.device.type, enabled=False):
            w = weight.to(mm)
            for s in range(0, n, chunk):
                z = _block(x[s:s + chunk].to(mm), w, bias, acc)
                t = targets[s:s + chunk]
                lse[s:s + chunk] = torch.logsumexp(z, dim=1)
                rows = lse[s:s + chunk] - (1.0 - smoothing) * z.gather(1, t.clamp_min(0)[:, None])[:, 0]
                if smoothing:
                    rows = rows - smoothing * z.mean(dim=1)
                total += torch.where(t != IGNORE, rows, torch.zeros_like(rows)).sum()
        ctx.save_for_backward(x, weight, bias, targets, lse)
        ctx.chunk, ctx.smoothing, ctx.mm, ctx.n_classes = chunk, smoothing, mm, n_classes
        return total

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_total):
        x, weight, bias, targets, lse = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        mm, acc, chunk, eps = ctx.mm, lse.dtype, ctx.chunk, ctx.smoothing
        gx = torch.empty_like(x) if need_x else None
        gw = torch.zeros(weight.shape, dtype=acc, device=weight.device) if need_w else None
        gb = torch.zeros(bias.shape, dtype=acc, device=bias.device) if (need_b and bias is not None) else None
        with torch.autocast(x.device.type, enabled=False):
            w = weight.to(mm)
            for s in range(0, x.shape[0], chunk):
                xs = x[s:s + chunk].to(mm)
                t = targets[s:s + chunk]
                g = torch.exp(_block(xs, w, bias, acc) - lse[s:s + chunk, None])  # softmax
                if eps:
                    g -= eps / ctx.n_classes
                g.scatter_add_(1, t.clamp_min(0)[:, None], torch.full_like(g[:, :1], eps - 1.0))
                g *= ((t != IGNORE).to(acc) * grad_total.to(acc))[:, None]
                if gx is not None:
                    gx[s:s + chunk] = (g.to(mm) @ w).to(x.dtype)
                if gw is not None:
                    gw += (g.T.to(mm) @ xs).to(acc)
                if gb is not None:
                    gb += g.sum(dim=0)
        return (gx, None if gw is None else gw.to(weight.dtype),
                None if gb is None else gb.to(bias.dtype), None, None, None)


def chunked_linear_cross_entropy(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                                 targets: torch.Tensor, chunk: int, smoothing: float = 0.0) -> torch.Tensor:
    """Summed cross-entropy of ``x W^T + b`` against ``targets`` (``-100`` ignored), ``chunk`` rows at a time.

    Equal to ``F.cross_entropy(x @ W.T + b, targets, reduction="sum", label_smoothing=smoothing,
    ignore_index=-100)`` but never holds more than ``chunk x V`` logits, forward or backward.
    """
    return ChunkedLinearCrossEntropy.apply(x, weight, bias, targets, int(chunk), float(smoothing))
