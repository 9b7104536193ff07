"""The harmonic loss as Triton kernels that never hold the ``(N, V)`` distance matrix.

The same quantity as :func:`overtone_harmonic.chunked.chunked_harmonic_loss`: for rows ``x_r``,
centres ``w_i``, ``a = n / 2`` and ``B_ri = max(|x_r|^2 + |w_i|^2 - 2 x_r . w_i, eps)``,

    z_ri = -a log B_ri,     L_r = logsumexp_i z_ri - z_ry,     loss = mean of L_r over t_r != -100.

Forward: one program per block of rows streams the centres in blocks, builds each ``B`` tile from
one ``tl.dot`` (float32 accumulation), and keeps a running max and sum of ``exp(z)`` (an online
logsumexp) and the target's ``z``; it writes ``lse_r`` and ``L_r`` (two numbers per row).
Backward recomputes each ``(rows, centres)`` tile, one program per tile: with
``g_r`` the incoming gradient over the count (0 on ignored rows), ``p = exp(z - lse)`` and
``D_ri = g_r (p_ri - [i = y_r]) (-a / B_ri)`` (0 where the floor ``eps`` is active, as in the
chunked path),

    dL/dx_r = 2 (x_r sum_i D_ri - (D W)_r),     dL/dw_i = 2 (w_i sum_r D_ri - (D^T X)_i),

the products and sums are added into float32 buffers with atomics, and the two ``(N, d)`` /
``(V, d)`` combinations are done by torch afterwards. Offsets are int64 (``N d`` may pass 2^31);
``V`` and ``d`` are compile-time constants (one compile per head shape; the interpreter, with
NumPy 2.4, also cannot take a run-time scalar as a loop bound). ``D`` is rounded to the inputs' dtype
before the products (bf16 operands, float32 accumulation), and its row and column sums are
taken after that rounding, so both terms of each gradient see the same ``D``.

Floating-point inputs of dtype float32, bfloat16 or float16 (mixed inputs run in float32);
float32 products use ``input_precision="ieee"``: TF32 would cancel badly in the expanded
distance. Triton's interpreter (``TRITON_INTERPRET=1``, set before triton is first imported)
runs the kernels on CPU; its ``tl.dot`` reads bfloat16 tiles as raw integers, so in that mode
tiles are widened to float32 before each product (the products of bfloat16 values are exact
in float32, so the result is the same up to summation order).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from overtone_harmonic.functional import IGNORE, triton_interpreter_requested

#: Whether the kernels below were built for Triton's CPU interpreter (read once, at import).
INTERPRETED = triton_interpreter_requested()
_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


@triton.jit
def _distance_tile(x_ptr, w_ptr, xn_ptr, wn_ptr, rows, cols, n_rows, n_cols: tl.constexpr, d: tl.constexpr,
                   BLOCK_N: tl.constexpr, BLOCK_V: tl.constexpr, BLOCK_D: tl.constexpr,
                   WIDEN: tl.constexpr, IEEE: tl.constexpr):
    """``|x_r|^2 + |w_i|^2 - 2 x_r . w_i`` for one tile of rows and centres, float32, unfloored
    (``+inf`` in the columns past the last centre)."""
    acc = tl.zeros((BLOCK_N, BLOCK_V), dtype=tl.float32)
    for k in range(0, d, BLOCK_D):
        ks = k + tl.arange(0, BLOCK_D)
        xt = tl.load(x_ptr + rows[:, None].to(tl.int64) * d + ks[None, :],
                     mask=(rows[:, None] < n_rows) & (ks[None, :] < d), other=0.0)
        wt = tl.load(w_ptr + cols[:, None].to(tl.int64) * d + ks[None, :],
                     mask=(cols[:, None] < n_cols) & (ks[None, :] < d), other=0.0)
        if WIDEN:
            xt = xt.to(tl.float32)
            wt = wt.to(tl.float32)
        if IEEE:
            acc = tl.dot(xt, tl.trans(wt), acc, input_precision="ieee")
        else:
            acc = tl.dot(xt, tl.trans(wt), acc)
    xn = tl.load(xn_ptr + rows, mask=rows < n_rows, other=0.0)
    wn = tl.load(wn_ptr + cols, mask=cols < n_cols, other=float("inf"))  # padding centres are infinitely far
    return xn[:, None] + wn[None, :] - 2.0 * acc


@triton.jit
def _forward_kernel(x_ptr, w_ptr, xn_ptr, wn_ptr, t_ptr, lse_ptr, loss_ptr, n_rows, n_cols: tl.constexpr, d: tl.constexpr, a, eps,
                    BLOCK_N: tl.constexpr, BLOCK_V: tl.constexpr, BLOCK_D: tl.constexpr,
                    WIDEN: tl.constexpr, IEEE: tl.constexpr):
    """Per row: ``lse_r = logsumexp_i z_ri`` (online over centre blocks) and ``L_r = lse_r - z_ry``."""
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    t = tl.load(t_ptr + rows, mask=rows < n_rows, other=-1)
    run_max = tl.full((BLOCK_N,), float("-inf"), dtype=tl.float32)
    run_sum = tl.zeros((BLOCK_N,), dtype=tl.float32)
    z_target = tl.zeros((BLOCK_N,), dtype=tl.float32)
    for v in range(0, n_cols, BLOCK_V):
        cols = v + tl.arange(0, BLOCK_V)
        b = _distance_tile(x_ptr, w_ptr, xn_ptr, wn_ptr, rows, cols, n_rows, n_cols, d,
                           BLOCK_N, BLOCK_V, BLOCK_D, WIDEN, IEEE)
        z = -a * tl.log(tl.maximum(b, eps))
        z = tl.where(cols[None, :] < n_cols, z, float("-inf"))
        new_max = tl.maximum(run_max, tl.max(z, axis=1))
        run_sum = run_sum * tl.exp(run_max - new_max) + tl.sum(tl.exp(z - new_max[:, None]), axis=1)
        run_max = new_max
        z_target += tl.sum(tl.where(cols[None, :] == t[:, None], z, 0.0), axis=1)
    lse = run_max + tl.log(run_sum)
    tl.store(lse_ptr + rows, lse, mask=rows < n_rows)
    tl.store(loss_ptr + rows, lse - z_target, mask=rows < n_rows)


@triton.jit
def _backward_kernel(x_ptr, w_ptr, xn_ptr, wn_ptr, t_ptr, lse_ptr, g_ptr, dxw_ptr, dwx_ptr, rsum_ptr, csum_ptr,
                     n_rows, n_cols: tl.constexpr, d: tl.constexpr, a, eps,
                     BLOCK_N: tl.constexpr, BLOCK_V: tl.constexpr, BLOCK_D: tl.constexpr,
                     WIDEN: tl.constexpr, IEEE: tl.constexpr):
    """One ``(rows, centres)`` tile: ``D`` as in the module docstring; adds ``D W`` into ``dxw``,
    ``D^T X`` into ``dwx``, the row sums of ``D`` into ``rsum`` and its column sums into ``csum``."""
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    cols = tl.program_id(1) * BLOCK_V + tl.arange(0, BLOCK_V)
    row_ok = rows < n_rows
    col_ok = cols < n_cols
    t = tl.load(t_ptr + rows, mask=row_ok, other=-1)
    lse = tl.load(lse_ptr + rows, mask=row_ok, other=float("inf"))  # p = 0 on padding rows
    g = tl.load(g_ptr + rows, mask=row_ok, other=0.0)
    b = _distance_tile(x_ptr, w_ptr, xn_ptr, wn_ptr, rows, cols, n_rows, n_cols, d,
                       BLOCK_N, BLOCK_V, BLOCK_D, WIDEN, IEEE)
    bf = tl.maximum(b, eps)
    p = tl.exp(-a * tl.log(bf) - lse[:, None])
    dz = g[:, None] * (p - tl.where(cols[None, :] == t[:, None], 1.0, 0.0))
    keep = (b >= eps) & col_ok[None, :] & row_ok[:, None]
    dd = tl.where(keep, dz * (-a / bf), 0.0).to(x_ptr.dtype.element_ty)  # rounded once, used everywhere
    ddf = dd.to(tl.float32)
    tl.atomic_add(rsum_ptr + rows, tl.sum(ddf, axis=1), mask=row_ok)
    tl.atomic_add(csum_ptr + cols, tl.sum(ddf, axis=0), mask=col_ok)
    if WIDEN:
        dd = ddf
    for k in range(0, d, BLOCK_D):
        ks = k + tl.arange(0, BLOCK_D)
        k_ok = ks[None, :] < d
        xt = tl.load(x_ptr + rows[:, None].to(tl.int64) * d + ks[None, :], mask=row_ok[:, None] & k_ok, other=0.0)
        wt = tl.load(w_ptr + cols[:, None].to(tl.int64) * d + ks[None, :], mask=col_ok[:, None] & k_ok, other=0.0)
        if WIDEN:
            xt = xt.to(tl.float32)
            wt = wt.to(tl.float32)
        if IEEE:
            part_x = tl.dot(dd, wt, input_precision="ieee")
            part_w = tl.dot(tl.trans(dd), xt, input_precision="ieee")
        else:
            part_x = tl.dot(dd, wt)
            part_w = tl.dot(tl.trans(dd), xt)
        tl.atomic_add(dxw_ptr + rows[:, None].to(tl.int64) * d + ks[None, :], part_x, mask=row_ok[:, None] & k_ok)
        tl.atomic_add(dwx_ptr + cols[:, None].to(tl.int64) * d + ks[None, :], part_w, mask=col_ok[:, None] & k_ok)


def _blocks(block_n: int | None, block_v: int | None, block_d: int | None) -> tuple[int, int, int]:
    """Tile sizes: the given ones, else 64 rows x 64 centres x 32 features (``tl.dot`` needs >= 16)."""
    sizes = (block_n or 64, block_v or 64, block_d or 32)
    if any(s < 16 or s & (s - 1) for s in sizes):
        raise ValueError(f"triton harmonic loss: block sizes {sizes} must be powers of two >= 16")
    return sizes


def check_device(*tensors: torch.Tensor) -> None:
    """Raise a one-line error unless the tensors are on a CUDA device (or, under
    ``TRITON_INTERPRET=1``, on the CPU) and of a dtype the kernels take."""
    from overtone import ConfigError

    for tensor in tensors:
        if INTERPRETED and tensor.device.type != "cpu":
            raise ConfigError("[loss] impl = 'triton' under TRITON_INTERPRET=1 runs on CPU tensors only "
                              f"(got {tensor.device}); unset TRITON_INTERPRET to use the GPU")
        if not INTERPRETED and tensor.device.type != "cuda":
            raise ConfigError(f"[loss] impl = 'triton' needs CUDA tensors (got {tensor.device}); use impl = 'torch' "
                              "on CPU, or set TRITON_INTERPRET=1 to run the kernels in Triton's interpreter")
        if tensor.dtype not in _DTYPES:
            raise ConfigError(f"[loss] impl = 'triton' takes float32, bfloat16 or float16 inputs (got {tensor.dtype}); "
                              "use impl = 'torch' for float64")


class TritonHarmonicLoss(torch.autograd.Function):
    """Mean harmonic loss over targets that are not ``-100``, by the kernels above.

    Inputs: ``x (N, d)``, ``w (V, d)``, ``targets (N,)`` int64, ``a`` the exponent on ``d^2``,
    ``eps`` the floor of ``d^2``, and the three tile sizes. Saves ``lse`` (``N`` floats) for the
    backward pass, which recomputes the distances.
    """

    @staticmethod
    def forward(ctx, x, w, targets, a: float, eps: float, block_n: int, block_v: int, block_d: int):
        ctx.x_dtype, ctx.w_dtype = x.dtype, w.dtype
        common = x.dtype if x.dtype == w.dtype else torch.float32
        xc, wc = x.detach().to(common).contiguous(), w.detach().to(common).contiguous()
        t = targets.contiguous()
        n_rows, d = xc.shape
        n_cols = wc.shape[0]
        xn = xc.float().square().sum(1)
        wn = wc.float().square().sum(1)
        lse = torch.empty(n_rows, dtype=torch.float32, device=x.device)
        losses = torch.empty(n_rows, dtype=torch.float32, device=x.device)
        flags = dict(WIDEN=INTERPRETED, IEEE=common == torch.float32)
        if n_rows:
            _forward_kernel[(triton.cdiv(n_rows, block_n),)](
                xc, wc, xn, wn, t, lse, losses, n_rows, n_cols, d, float(a), float(eps),
                BLOCK_N=block_n, BLOCK_V=block_v, BLOCK_D=block_d, **flags)
        valid = t != IGNORE
        if bool((valid & ((t < 0) | (t >= n_cols))).any()):
            raise ValueError(f"triton harmonic loss: targets must lie in [0, {n_cols}) or be {IGNORE} (ignored)")
        count = valid.sum().clamp_min(1).float()
        ctx.save_for_backward(xc, wc, xn, wn, t, lse, valid, count)
        ctx.config = (float(a), float(eps), block_n, block_v, block_d, flags)
        return torch.where(valid, losses, 0.0).sum() / count

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        xc, wc, xn, wn, t, lse, valid, count = ctx.saved_tensors
        a, eps, block_n, block_v, block_d, flags = ctx.config
        need_x, need_w = ctx.needs_input_grad[:2]
        n_rows, d = xc.shape
        n_cols = wc.shape[0]
        g = valid.float() * (grad_out.float() / count)
        dxw = torch.zeros(n_rows, d, dtype=torch.float32, device=xc.device)
        dwx = torch.zeros(n_cols, d, dtype=torch.float32, device=xc.device)
        rsum = torch.zeros(n_rows, dtype=torch.float32, device=xc.device)
        csum = torch.zeros(n_cols, dtype=torch.float32, device=xc.device)
        if n_rows:
            grid = (triton.cdiv(n_rows, block_n), triton.cdiv(n_cols, block_v))
            _backward_kernel[grid](xc, wc, xn, wn, t, lse, g, dxw, dwx, rsum, csum, n_rows, n_cols, d, a, eps,
                                   BLOCK_N=block_n, BLOCK_V=block_v, BLOCK_D=block_d, **flags)
        gx = (2.0 * (xc.float() * rsum[:, None] - dxw)).to(ctx.x_dtype) if need_x else None
        gw = (2.0 * (wc.float() * csum[:, None] - dwx)).to(ctx.w_dtype) if need_w else None
        return gx, gw, None, None, None, None, None, None


def triton_harmonic_loss(x: torch.Tensor, w: torch.Tensor, targets: torch.Tensor, n: float, eps: float = 1e-12,
                         block_n: int | None = None, block_v: int | None = None,
                         block_d: int | None = None) -> torch.Tensor:
    """Mean of ``-log p_y`` with ``p_i = d_i^-n / sum_j d_j^-n`` (``n`` on the distance) over rows
    whose target is not ``-100`` (0 when every target is ignored), by Triton kernels: equal to
    :func:`~overtone_harmonic.chunked.chunked_harmonic_loss` up to float32 rounding, holding
    ``O(N + V)`` extra floats in the forward pass and ``O((N + V) d)`` in the backward pass.
    """
    check_device(x, w)
    if x.ndim != 2 or w.ndim != 2 or x.shape[1] != w.shape[1] or targets.shape != x.shape[:1]:
        raise ValueError(f"triton harmonic loss: x {tuple(x.shape)}, w {tuple(w.shape)} and targets "
                         f"{tuple(targets.shape)} must be (N, d), (V, d) and (N,)")
    with torch.autocast(x.device.type, enabled=False):
        return TritonHarmonicLoss.apply(x, w, targets.to(torch.int64), 0.5 * float(n), float(eps),
                                        *_blocks(block_n, block_v, block_d))

