"""The element-wise part of one chunk of the harmonic loss on CPU as one C++ loop per row.

Given the matrix product ``G = x w^T`` of a chunk (``rows x V``), the squared norms ``|x_r|^2``
and ``|w_i|^2``, ``a`` (the exponent on ``d^2``), the floor and the shift of ``d^2``, the loop
makes two passes over each row while it sits in cache (a row of 50,257 floats is 196 KiB, the
L2 of one core holds it):

1. ``m_r = max(min_i raw_ri, floor) + shift`` with ``raw_ri = |x_r|^2 + |w_i|^2 - 2 G_ri``;
2. ``B_ri = max(raw_ri, floor) + shift``, ``P_ri = exp(a (log m_r - log B_ri))``,
   ``S_r = sum_i P_ri``, ``Q_ri = P_ri / B_ri`` (0 where ``raw_ri < floor``: a floored value
   is a constant, with no gradient), written over ``G``, and ``T_r = sum_i Q_ri``.

ATen's eager kernels take about ten passes over a ``(rows, V)`` block for the same work (norms
added, minimum, log, scale, exp, sum, divide, mask, sum) and need a second block. Sums are
formed in blocks of 1,024 elements in vector lanes and added up in double. The loop is built by
inductor's own C++ toolchain (as :mod:`overtone_focus.fused` builds FOCUS's loop) with
``at::vec`` (SLEEF's vectorised ``log`` and ``exp``), once per dtype (float32, float64);
:func:`row_kernel` is ``None`` where it cannot be built, and the caller then runs ATen's
kernels (same results within rounding).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

_SOURCE = r"""
#include <torch/csrc/inductor/cpp_prefix.h>
#include <cmath>
#include <limits>
using T = SCALAR;
using Vec = at::vec::Vectorized<T>;

static inline T hsum(const Vec& v) {
    alignas(64) T tmp[Vec::size()];
    v.store(tmp);
    T s = 0;
    for (int64_t k = 0; k < Vec::size(); ++k) s += tmp[k];
    return s;
}

static inline void one_row(T* g, const T x2, const T* wn, const T a, const T floor_, const T shift,
                           const int64_t V, T* m_out, T* s_out, T* q_out)
{
    constexpr int64_t L = Vec::size();
    const int64_t body = V - V % L;
    const Vec vm2(T(-2)), vx2(x2), vfloor(floor_), vshift(shift), va(a), vzero(T(0));
    // pass 1: row minimum of |w|^2 - 2 g (|x|^2 is the same for the whole row)
    Vec vmin(std::numeric_limits<T>::infinity());
    for (int64_t j = 0; j < body; j += L)
        vmin = at::vec::minimum(vmin, at::vec::fmadd(vm2, Vec::loadu(g + j), Vec::loadu(wn + j)));
    alignas(64) T tmp[L];
    vmin.store(tmp);
    T mn = std::numeric_limits<T>::infinity();
    for (int64_t k = 0; k < L; ++k) mn = tmp[k] < mn ? tmp[k] : mn;
    for (int64_t j = body; j < V; ++j) {
        const T r = T(-2) * g[j] + wn[j];
        mn = r < mn ? r : mn;
    }
    T m = mn + x2;
    m = (m < floor_ ? floor_ : m) + shift;
    const T log_m = std::log(m);
    const Vec vlog_m(log_m);
    // pass 2: P = exp(a (log m - log B)), S = sum P, Q = P / B over g, sum Q
    double S = 0.0, Qs = 0.0;
    for (int64_t lo = 0; lo < body; lo += 1024) {
        const int64_t hi = lo + 1024 < body ? lo + 1024 : body;
        Vec vs(T(0)), vq(T(0));
        for (int64_t j = lo; j < hi; j += L) {
            const Vec raw = at::vec::fmadd(vm2, Vec::loadu(g + j), Vec::loadu(wn + j)) + vx2;
            const Vec b = at::vec::maximum(raw, vfloor) + vshift;
            const Vec p = (va * (vlog_m - b.log())).exp();
            const Vec q = Vec::blendv(p / b, vzero, raw < vfloor);
            q.store(g + j);
            vs = vs + p;
            vq = vq + q;
        }
        S += hsum(vs);
        Qs += hsum(vq);
    }
    for (int64_t j = body; j < V; ++j) {
        const T raw = T(-2) * g[j] + wn[j] + x2;
        const T b = (raw < floor_ ? floor_ : raw) + shift;
        const T p = std::exp(a * (log_m - std::log(b)));
        const T q = raw < floor_ ? T(0) : p / b;
        g[j] = q;
        S += p;
        Qs += q;
    }
    *m_out = m;
    *s_out = T(S);
    *q_out = T(Qs);
}

// hp = [a, floor, shift]; one row per iteration over `threads` OpenMP threads
extern "C" void kernel(T* g, const T* xn, const T* wn, const T* hp, T* m, T* s, T* q,
                       const int64_t rows, const int64_t V, const int64_t threads)
{
    const T a = hp[0], floor_ = hp[1], shift = hp[2];
#pragma omp parallel for num_threads(threads) schedule(static) if(threads > 1)
    for (int64_t r = 0; r < rows; ++r)
        one_row(g + r * V, xn[r], wn, a, floor_, shift, V, m + r, s + r, q + r);
}
"""

_ARGS = [
    "T*",
    "const T*",
    "const T*",
    "const T*",
    "T*",
    "T*",
    "T*",
    "const int64_t",
    "const int64_t",
    "const int64_t",
]
_built: dict[torch.dtype, Callable | None] = {}
#: The C++ scalar type of each dtype the loop is built for.
SCALARS = {torch.float32: "float", torch.float64: "double"}


def row_kernel(dtype: torch.dtype) -> Callable | None:
    """The row loop for ``dtype`` (float32 or float64), built once per process; ``None`` where
    it cannot be built (no C++ compiler, no vector ISA, or inductor's private
    ``CppPythonBindingsCodeCache`` changed) or for another dtype."""
    if dtype not in _built:
        loop = None
        if dtype in SCALARS:
            try:
                from torch._inductor.codecache import CppPythonBindingsCodeCache
                from torch._inductor.cpu_vec_isa import pick_vec_isa

                if pick_vec_isa():
                    scalar = SCALARS[dtype]
                    source = _SOURCE.replace("SCALAR", scalar)
                    args = [t.replace("T*", f"{scalar}*") for t in _ARGS]
                    loop = CppPythonBindingsCodeCache.load_pybinding(args, source)
            except Exception:  # noqa: BLE001 - any failure: ATen's kernels run instead
                loop = None
        _built[dtype] = loop
    return _built[dtype]


def rows_softmax_parts(
    g: torch.Tensor, xn: torch.Tensor, wn: torch.Tensor, a: float, floor: float, shift: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """Run the row loop on the contiguous CPU block ``g = x w^T`` (overwritten with ``Q``):
    returns ``(m, S, sum_i Q)`` per row, or ``None`` (``g`` untouched) where no loop is built
    for its dtype. See the module docstring for what each is."""
    loop = row_kernel(g.dtype)
    if loop is None or g.device.type != "cpu" or not g.is_contiguous():
        return None
    rows, n_classes = g.shape
    hp = torch.tensor([a, floor, shift], dtype=g.dtype)
    m, s, q = (torch.empty(rows, dtype=g.dtype) for _ in range(3))
    loop(g, xn.contiguous(), wn.contiguous(), hp, m, s, q, rows, n_classes, torch.get_num_threads())
    return m, s, q
