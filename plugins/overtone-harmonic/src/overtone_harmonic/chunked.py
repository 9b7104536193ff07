"""The harmonic loss computed ``chunk`` rows at a time: no ``(N, V)`` tensor, forward or backward.

For rows ``x_r`` (``N x d``), centres ``w_i`` (``V x d``), targets ``y_r`` and ``a = n / 2`` (the
exponent on the squared distance ``B_ri = d_ri^2``), each row's loss is

    L_r = -log p_ry = a (log B_ry - log m_r) + log S_r,
    m_r = min_i B_ri,   P_ri = (B_ri / m_r)^-a,   S_r = sum_i P_ri,   p_ri = P_ri / S_r,

which is ``logsumexp(z_r) - z_ry`` for ``z = -a log B`` shifted by its row maximum (stable: every
``P_ri`` lies in ``[0, 1]``). With ``H_ri = (p_ri - [i = y_r]) / B_ri``, the chain rule through
``B_ri = |x_r|^2 + |w_i|^2 - 2 x_r . w_i`` gives

    dL/dx_r = -2a ( h_r x_r - (H w)_r ),      h_r = sum_i H_ri,
    dL/dw_i = -2a ( c_i w_i - (H^T x)_i ),    c_i = sum_r H_ri.

``H = diag(1/S) Q'`` with ``Q' = P / B`` less ``S_r / B_ry`` at each target (``chunk`` entries
written into the block), so the row scaling is applied to the small ``(chunk, d)`` products and
the one-hot term needs no ``(V, d)`` scatter. When gradients are wanted they are computed in the forward
pass (three matrix products per chunk in all, as many as a plain linear head's forward plus
backward, none recomputed) and kept until backward, which only scales them by the incoming
gradient. Memory for the head: two ``(chunk, V)`` blocks plus the gradients ``(N, d)`` and
``(V, d)``; on CPU one block, when the element-wise work runs as one C++ loop per row
(:mod:`overtone_harmonic.cpu_rows`: two passes over each row while it is in cache, ``Q`` written
over ``x w^T``), which is the default wherever inductor can build it. Where the floor ``eps``
on ``B`` is active the gradient is zero (the floored value is a constant), so ``x = w_i`` gives
a finite loss and no NaN. With ``eps_mode = "add"`` the block is ``B = max(d^2, 0) + eps``
instead (the reference code's ``d^2 + eps``); the formulas above hold unchanged for that ``B``
(the added constant has no gradient).
"""

from __future__ import annotations

import torch
from overtone.runschema import accumulation_dtype_name

from overtone_harmonic.cpu_rows import row_kernel, rows_softmax_parts
from overtone_harmonic.functional import IGNORE, eps_floor_and_shift


def accumulation_dtype(*tensors: torch.Tensor) -> torch.dtype:
    """The dtype distances and sums run in: the run schema's one rule
    (:func:`overtone.runschema.accumulation_dtype_name`: float64 if any input is, else float32)."""
    return getattr(torch, accumulation_dtype_name(*(str(t.dtype) for t in tensors)))


def _chunk_loss_and_grads(xs, w, wn, t, valid, a, eps, B, P, want_x, want_w, acc_c, acc_m, shift=0.0,
                          scale=1.0, first=False):
    """Row losses of one chunk (``B = max(d^2, eps) + shift``); adds this chunk's parts of ``c`` and ``H^T x`` into ``acc_c``,
    ``acc_m`` (times ``scale``, the mean's ``-2a / count``; ``first``: overwritten, not added to) and
    returns ``(losses, gx_chunk or None)``, the chunk's rows of ``dL/dx`` (``scale`` included).

    ``H = s (Q - onehot * S / B_y)`` with ``s = 1 / S`` (0 on ignored rows): the one-hot term is
    written into ``Q`` at the targets (``chunk`` entries), so every product below uses ``Q``
    alone and no ``(V, d)`` scatter is needed.
    """
    tc = t.clamp_min(0)[:, None]
    torch.add(wn[None, :], torch.linalg.vector_norm(xs, dim=1, keepdim=True).square_(), out=B)
    B.addmm_(xs, w.T, alpha=-2.0)  # |x|^2 + |w|^2 - 2 x.w: one write pass, then the product
    m = B.amin(1)
    floored = None
    if bool((m < eps).any()):
        floored = B < eps
        B.clamp_min_(eps)
        m = m.clamp_min(eps)
    if shift:  # eps_mode = "add": d^2 + eps
        B.add_(shift)
        m = m + shift
    by = B.gather(1, tc)[:, 0]
    log_m = torch.log(m)
    torch.log(B, out=P)
    torch.add((a * log_m)[:, None], P, alpha=-a, out=P)  # -a (log B - log m) <= 0
    P.exp_()  # (B / m)^-a in [0, 1]; exp and log cost less than pow
    S = P.sum(1)
    zero = torch.zeros_like(S)
    losses = torch.where(valid, a * (torch.log(by) - log_m) + torch.log(S), zero)
    if not (want_x or want_w):
        return losses, None
    P.div_(B)  # now Q = P / B
    hit = torch.where(valid, S / by, zero)
    if floored is not None:  # a floored d^2 is a constant: no gradient through it
        P.masked_fill_(floored, 0.0)
        hit = hit * ~floored.gather(1, tc)[:, 0]
    P.scatter_add_(1, tc, -hit[:, None])
    s = torch.where(valid, 1.0 / S, zero)
    gx = None
    if want_x:
        h = s * P.sum(1)
        gx = torch.mm(P, w).mul_(-scale * s[:, None]).addcmul_((scale * h)[:, None], xs)
    if want_w:
        beta = 0.0 if first else 1.0
        acc_c.addmv_(P.T, scale * s, beta=beta)
        acc_m.addmm_(P.T, (-scale * s)[:, None] * xs, beta=beta)
    return losses, gx


def _chunk_loss_and_grads_fused(xs, w, wn, t, valid, a, floor, G, want_x, want_w, acc_c, acc_m, shift=0.0,
                                scale=1.0, first=False):
    """:func:`_chunk_loss_and_grads` with the element-wise work in one C++ row loop
    (:mod:`overtone_harmonic.cpu_rows`) over the one block ``G``: ``x w^T`` is written into it,
    then ``Q`` over it. Returns ``None`` (nothing done) where no loop is built for the dtype."""
    torch.mm(xs, w.T, out=G)
    tc = t.clamp_min(0)[:, None]
    xn = torch.linalg.vector_norm(xs, dim=1).square_()
    raw_y = torch.addcmul(xn + wn[tc[:, 0]], G.gather(1, tc)[:, 0], torch.full_like(xn, -2.0))
    parts = rows_softmax_parts(G, xn, wn, a, floor, shift)
    if parts is None:
        return None
    m, S, q_sum = parts
    by = raw_y.clamp_min(floor) + shift
    zero = torch.zeros_like(S)
    losses = torch.where(valid, a * (torch.log(by) - torch.log(m)) + torch.log(S), zero)
    if not (want_x or want_w):
        return losses, None
    hit = torch.where(valid & (raw_y >= floor), S / by, zero)  # a floored target has no gradient
    G.scatter_add_(1, tc, -hit[:, None])
    s = torch.where(valid, 1.0 / S, zero)
    gx = None
    if want_x:
        h = s * (q_sum - hit)
        gx = torch.mm(G, w).mul_(-scale * s[:, None]).addcmul_((scale * h)[:, None], xs)
    if want_w:
        beta = 0.0 if first else 1.0
        acc_c.addmv_(G.T, scale * s, beta=beta)
        acc_m.addmm_(G.T, (-scale * s)[:, None] * xs, beta=beta)
    return losses, gx


class ChunkedHarmonicLoss(torch.autograd.Function):
    """Mean harmonic loss over targets that are not ``-100`` (see the module docstring).

    Inputs: ``x (N, d)``, ``w (V, d)``, ``targets (N,)`` int64, ``a`` the exponent on ``d^2``
    (half the paper's ``n``), ``eps`` the floor of ``d^2``, ``chunk`` rows per block,
    ``want_grad`` (False under ``torch.no_grad``: then no gradient work is done) and ``shift``
    added to ``d^2`` after the floor (``eps_mode = "add"``: floor 0, shift eps). Distances are
    computed in float32 (float64 when an input is float64), whatever the inputs' dtype.
    """

    @staticmethod
    def forward(ctx, x, w, targets, a: float, eps: float, chunk: int, want_grad: bool, shift: float = 0.0):
        acc = accumulation_dtype(x, w)
        want_x = want_grad and ctx.needs_input_grad[0]
        want_w = want_grad and ctx.needs_input_grad[1]
        n_rows, n_classes = x.shape[0], w.shape[0]
        wa = w.detach().to(acc).contiguous()
        wn = torch.linalg.vector_norm(wa, dim=1).square_()
        valid_all = targets != IGNORE
        count = valid_all.sum().clamp_min(1).to(acc)
        size = min(chunk, max(n_rows, 1))
        B = torch.empty(size, n_classes, dtype=acc, device=x.device)
        fused = x.device.type == "cpu" and row_kernel(acc) is not None
        P = None if fused else torch.empty_like(B)
        gx = torch.empty(x.shape, dtype=acc, device=x.device) if want_x else None
        # the first chunk overwrites these (beta = 0): no zero-filling pass over (V, d)
        new = torch.zeros if n_rows == 0 else torch.empty
        acc_c = new(n_classes, dtype=acc, device=x.device) if want_w else None
        acc_m = new(n_classes, x.shape[1], dtype=acc, device=x.device) if want_w else None
        scale = float(-2.0 * a / count)
        total = torch.zeros((), dtype=acc, device=x.device)
        for start in range(0, n_rows, chunk):
            stop = min(start + chunk, n_rows)
            xs = x[start:stop].detach().to(acc)
            out = None
            if fused:
                out = _chunk_loss_and_grads_fused(xs, wa, wn, targets[start:stop], valid_all[start:stop], a, eps,
                                                  B[:stop - start], want_x, want_w, acc_c, acc_m, shift, scale,
                                                  start == 0)
            if out is None:
                P = torch.empty_like(B) if P is None else P
                out = _chunk_loss_and_grads(xs, wa, wn, targets[start:stop], valid_all[start:stop], a, eps,
                                            B[:stop - start], P[:stop - start], want_x, want_w, acc_c, acc_m, shift,
                                            scale, start == 0)
            losses, gxs = out
            total += losses.sum()
            if gxs is not None:
                gx[start:stop] = gxs
        gw = None
        if want_w:  # -2a / count (c_i w_i - (H^T x)_i): both parts already scaled, one pass over (V, d)
            gw = acc_m.addcmul_(acc_c[:, None], wa).to(w.dtype)
        if want_x:
            gx = gx.to(x.dtype)
        ctx.save_for_backward(gx, gw)
        return total / count

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        gx, gw = ctx.saved_tensors
        need_x, need_w = ctx.needs_input_grad[:2]
        if (need_x and gx is None) or (need_w and gw is None):
            raise RuntimeError("harmonic loss: gradients were not computed in the forward pass "
                               "(it ran under torch.no_grad); run the forward pass with grad enabled")
        one = bool(grad_out == 1)
        gx = (gx if one else gx * grad_out.to(gx.dtype)) if need_x else None
        gw = (gw if one else gw * grad_out.to(gw.dtype)) if need_w else None
        return gx, gw, None, None, None, None, None, None


def chunked_harmonic_loss(x: torch.Tensor, w: torch.Tensor, targets: torch.Tensor, n: float,
                          eps: float = 1e-12, chunk_size: int = 1024, eps_mode: str = "floor") -> torch.Tensor:
    """Mean of ``-log p_y`` with ``p_i = d_i^-n / sum_j d_j^-n`` (``n`` on the distance) over rows
    whose target is not ``-100``, ``chunk_size`` rows at a time; 0 when every target is ignored.

    Equal to ``F.cross_entropy(harmonic_logits(x, w, n, eps, eps_mode), targets, ignore_index=-100)``
    without ever holding more than two ``(chunk_size, V)`` blocks.
    """
    floor, shift = eps_floor_and_shift(eps, eps_mode)
    with torch.autocast(x.device.type, enabled=False):
        return ChunkedHarmonicLoss.apply(x, w, targets, 0.5 * float(n), floor, int(chunk_size),
                                         torch.is_grad_enabled(), shift)
