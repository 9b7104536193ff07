"""Linear head + softmax cross-entropy computed in row chunks: no ``(N, V)`` logits tensor.

For rows ``x_i`` (``N x d``), a head ``W`` (``V x d``) and bias ``b``, the logits are
``z_i = W x_i + b`` and, with label smoothing ``eps`` (target distribution
``q = (1 - eps) e_y + eps / V``), the summed loss is

    L = sum_{i kept} [ -(1 - eps) log softmax(z_i)_{y_i} - eps * mean_j log softmax(z_i)_j ]

(equal to ``logsumexp(z_i) - (1 - eps) z_{i,y_i} - eps mean_j z_{i,j}``) with
``G_i = dL/dz_i = softmax(z_i) - q_i`` (zero for ignored rows), so

    dL/dx = G W,    dL/dW = G^T X,    dL/db = sum_i G_i.

When gradients are wanted they are computed chunk by chunk in the forward pass, right after
the chunk's logits (three matrix products per chunk, the same three as a plain head's forward
plus backward; nothing is recomputed), and kept until ``backward``, which only scales them by
the incoming gradient. Per chunk the element-wise work is what ``F.cross_entropy`` does on the
full matrix: one fused ``log_softmax`` (written into a reused buffer), one ``exp`` in place,
a scatter at the targets. Peak memory for the head is two ``(chunk, V)`` blocks plus the
gradients ``(N, d)`` and ``(V, d)`` instead of ``O(N * V)``.
"""

from __future__ import annotations

import torch
from overtone.runschema import accumulation_dtype_name

IGNORE = -100


def accumulation_dtype(*dtypes: torch.dtype) -> torch.dtype:
    """The dtype a softmax and its sums run in: the run schema's one rule
    (:func:`overtone.runschema.accumulation_dtype_name`: float64 if any input is, else float32)."""
    return getattr(torch, accumulation_dtype_name(*(str(d) for d in dtypes)))


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


def _logits_into(z: torch.Tensor, xs: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None) -> None:
    """Write the chunk's logits ``xs w^T + b`` into ``z`` (the accumulation dtype) without a new block."""
    if xs.dtype == z.dtype:
        if bias is None:
            torch.mm(xs, w.T, out=z)
        else:
            torch.addmm(bias.to(z.dtype), xs, w.T, out=z)
        return
    z.copy_(xs @ w.T)  # half-precision product, reduced in float32
    if bias is not None:
        z.add_(bias.to(z.dtype))


class ChunkedLinearCrossEntropy(torch.autograd.Function):
    """Autograd function for the summed chunked cross-entropy (see the module docstring).

    Inputs ``x (N, d)``, ``weight (V, d)``, ``bias (V,) | None``, ``targets (N,)`` int64
    (``-100`` ignored), ``chunk`` rows per block, ``smoothing`` in ``[0, 1)``, ``want_grad``
    (False under ``torch.no_grad``: then no gradient work is done), ``mean``. Returns the sum
    over kept rows, or with ``mean`` their mean (0 when every row is ignored), the stored
    gradients scaled to match in place. The matrix products run in the
    autocast dtype when autocast is on (as ``F.linear`` would), in the inputs' promoted dtype
    otherwise; reductions and the stored ``dL/dW``, ``dL/db`` in float32 (float64 for float64).
    """

    @staticmethod
    def forward(ctx, x, weight, bias, targets, chunk: int, smoothing: float, want_grad: bool, mean: bool):
        mm = _autocast_dtype(x.device.type) or torch.promote_types(x.dtype, weight.dtype)
        acc = accumulation_dtype(mm)
        want_x = want_grad and ctx.needs_input_grad[0]
        want_w = want_grad and ctx.needs_input_grad[1]
        want_b = want_grad and bias is not None and ctx.needs_input_grad[2]
        n, n_classes = x.shape[0], weight.shape[0]
        size = min(chunk, max(n, 1))
        logits = torch.empty(size, n_classes, dtype=acc, device=x.device)
        block = torch.empty_like(logits)  # log-softmax, then the gradient softmax - q
        gx = torch.empty_like(x) if want_x else None
        gw = torch.zeros(weight.shape, dtype=acc, device=x.device) if want_w else None
        gb = torch.zeros(n_classes, dtype=acc, device=x.device) if want_b else None
        total = torch.zeros((), dtype=acc, device=x.device)
        with torch.autocast(x.device.type, enabled=False):
            w = weight.detach().to(mm)
            for s in range(0, n, chunk):
                xs, t = x[s:s + chunk].detach().to(mm), targets[s:s + chunk]
                z, g = logits[:xs.shape[0]], block[:xs.shape[0]]
                _logits_into(z, xs, w, bias if bias is None else bias.detach())
                torch.log_softmax(z, 1, out=g)
                tc = t.clamp_min(0)[:, None]
                rows = g.gather(1, tc)[:, 0].mul_(smoothing - 1.0)
                if smoothing:
                    rows -= smoothing * g.mean(dim=1)
                ignored = (t == IGNORE).nonzero()[:, 0]
                total += rows.index_fill_(0, ignored, 0.0).sum()
                if not (want_x or want_w or want_b):
                    continue
                g.exp_()  # softmax
                if smoothing:
                    g.sub_(smoothing / n_classes)
                g.scatter_add_(1, tc, torch.full_like(g[:, :1], smoothing - 1.0))
                g.index_fill_(0, ignored, 0.0)  # touches the ignored rows only
                gm = g if mm == acc else g.to(mm)
                if want_x:
                    gx[s:s + chunk] = gm @ w
                if want_w:
                    if mm == acc:
                        gw.addmm_(gm.T, xs)
                    else:
                        gw += (gm.T @ xs).to(acc)
                if want_b:
                    gb += g.sum(dim=0)
        if mean:
            scale = 1.0 / (targets != IGNORE).sum().clamp_min(1).to(acc)
            total *= scale
            for g in (gx, gw, gb):
                if g is not None:
                    g.mul_(scale.to(g.dtype))
        ctx.save_for_backward(gx, None if gw is None else gw.to(weight.dtype),
                              None if gb is None else gb.to(bias.dtype))
        return total

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_total):
        grads = ctx.saved_tensors
        out = []
        for need, g in zip(ctx.needs_input_grad[:3], grads):
            if need and g is None:
                raise RuntimeError("chunked cross-entropy: gradients were not computed in the forward pass "
                                   "(it ran under torch.no_grad); run the forward pass with grad enabled")
            out.append(None if not need else g if bool(grad_total == 1) else g * grad_total.to(g.dtype))
        return (*out, None, None, None, None, None)


def chunked_linear_cross_entropy(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                                 targets: torch.Tensor, chunk: int, smoothing: float = 0.0, *,
                                 mean: bool = False) -> torch.Tensor:
    """Summed (``mean``: averaged) cross-entropy of ``x W^T + b`` against ``targets`` (``-100``
    ignored), ``chunk`` rows at a time.

    Equal to ``F.cross_entropy(x @ W.T + b, targets, reduction="sum" or "mean",
    label_smoothing=smoothing, ignore_index=-100)`` (the mean is 0, not NaN, when every target
    is ignored) but never holds more than two ``chunk x V`` blocks; with grad enabled the
    gradients are computed in the same pass (see the module docstring).
    """
    return ChunkedLinearCrossEntropy.apply(x, weight, bias, targets, int(chunk), float(smoothing),
                                           torch.is_grad_enabled(), bool(mean))
