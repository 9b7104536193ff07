"""Basis functions of KAN edges: B-splines on a uniform grid and Chebyshev polynomials.

Shapes follow one convention: inputs ``x (N, d_in)``, knots ``grid (d_in, G + 2k + 1)``,
basis values ``(N, d_in, M)`` with ``M`` functions per input, coefficients ``(d_in, d_out, M)``.
"""

from __future__ import annotations

import torch


def uniform_grid(d_in: int, grid_size: int, order: int, low: float, high: float, *,
                 dtype: torch.dtype | None = None, device: torch.device | str | None = None) -> torch.Tensor:
    """Knots ``t_j = low + j h`` for ``j = -order .. grid_size + order``, ``h = (high - low) / grid_size``.

    ``grid_size`` intervals on ``[low, high]`` extended by ``order`` knots on each side, so the
    ``grid_size + order`` B-splines of order ``order`` form a complete basis of the piecewise
    polynomials on ``[low, high]`` (as pykan's ``extend_grid``). One row per input.
    """
    h = (high - low) / grid_size
    steps = torch.arange(-order, grid_size + order + 1, dtype=torch.float64)
    knots = (low + h * steps).to(dtype=dtype or torch.get_default_dtype(), device=device)
    return knots.expand(d_in, -1).clone()


def bspline_basis(x: torch.Tensor, grid: torch.Tensor, order: int) -> torch.Tensor:
    """B-splines ``B_{j,k}(x_i)`` on the knots ``grid[i]`` by the Cox-de Boor recursion.

    ``B_{j,0}(x) = [t_j <= x < t_{j+1}]``;
    ``B_{j,p}(x) = (x - t_j) / (t_{j+p} - t_j) B_{j,p-1}(x)
    + (t_{j+p+1} - x) / (t_{j+p+1} - t_{j+1}) B_{j+1,p-1}(x)``.
    ``x (N, d_in)``, ``grid (d_in, K)`` strictly increasing; returns ``(N, d_in, K - order - 1)``.
    Outside ``[t_0, t_{K-1})`` every basis function is zero.
    """
    x = x.unsqueeze(-1)
    t = grid.unsqueeze(0)
    values = ((x >= t[..., :-1]) & (x < t[..., 1:])).to(x.dtype)
    for p in range(1, order + 1):
        left = (x - t[..., :-(p + 1)]) / (t[..., p:-1] - t[..., :-(p + 1)])
        right = (t[..., p + 1:] - x) / (t[..., p + 1:] - t[..., 1:-p])
        values = left * values[..., :-1] + right * values[..., 1:]
    return values


def chebyshev_basis(u: torch.Tensor, degree: int) -> torch.Tensor:
    """Chebyshev polynomials ``T_0(u) .. T_degree(u)`` of ``u (N, d_in)``: ``(N, d_in, degree + 1)``.

    ``T_0 = 1``, ``T_1 = u``, ``T_{m+1} = 2 u T_m - T_{m-1}`` (so ``T_m(cos a) = cos(m a)``).
    """
    values = [torch.ones_like(u), u]
    for _ in range(2, degree + 1):
        values.append(2 * u * values[-1] - values[-2])
    return torch.stack(values[:degree + 1], dim=-1)


def curve(basis: torch.Tensor, coef: torch.Tensor) -> torch.Tensor:
    """Edge functions ``phi_io(x_i) = sum_m c_iom b_m(x_i)``: ``(N, d_in, M), (d_in, d_out, M) -> (N, d_in, d_out)``."""
    return torch.einsum("nim,iom->nio", basis, coef)


def fit_coefficients(basis: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Least-squares coefficients ``argmin_c sum_n (sum_m c_iom b_m(x_ni) - y_nio)^2``, per input ``i``.

    ``basis (N, d_in, M)`` and ``values (N, d_in, d_out)`` give ``(d_in, d_out, M)``; the
    minimum-norm solution when ``N < M`` (the initial fit: ``G + 1`` points, ``G + k``
    functions). One batched ``torch.linalg.lstsq`` over the inputs (every output shares the
    design matrix), in float64 on the CPU with the SVD driver ``gelsd``, returned in ``values``'
    dtype and device. The default CPU driver ``gelsy`` returns wrong, call-to-call varying
    answers to these underdetermined systems (torch 2.13: residual ~1 on a full-rank system;
    ``test_fit_coefficients_interpolates_underdetermined_systems``), and CUDA's ``gels`` takes
    only full-column-rank systems.
    """
    design = basis.permute(1, 0, 2).to(device="cpu", dtype=torch.float64)  # (d_in, N, M)
    rhs = values.permute(1, 0, 2).to(device="cpu", dtype=torch.float64)  # (d_in, N, d_out)
    solution = torch.linalg.lstsq(design, rhs, driver="gelsd").solution  # (d_in, M, d_out)
    return solution.permute(0, 2, 1).to(device=values.device, dtype=values.dtype).contiguous()


def uniform_bspline_basis(x: torch.Tensor, grid: torch.Tensor, order: int) -> torch.Tensor:
    """:func:`bspline_basis` for uniform knots (``grid[i, j] = t_0 + j h_i``), computed locally.

    On uniform knots only ``order + 1`` B-splines are nonzero at ``x``: with ``u = (x - t_0) / h``,
    ``s = floor(u)`` and ``f = u - s``, the Cox-de Boor recursion restricted to them reads
    ``N_{r,p} = ((f + p - r) N_{r-1,p-1} + (r + 1 - f) N_{r,p-1}) / p`` (``r = 0 .. p``,
    ``N_{0,0} = 1``), and ``N_{r,k}`` belongs to basis function ``s - k + r``. This is
    ``O(k^2)`` work per input instead of ``O(k (G + k))``; the values are scattered into the
    ``(N, d_in, K - order - 1)`` result, zero outside ``[t_0, t_{K-1})`` as the full recursion.
    """
    n_basis = grid.shape[-1] - order - 1
    h = grid[:, 1] - grid[:, 0]
    u = (x - grid[:, 0]) / h
    s = torch.floor(u)
    f = u - s
    values = [torch.ones_like(f)]
    for p in range(1, order + 1):
        new = []
        for r in range(p + 1):
            term = (r + 1 - f) * values[r] if r < p else 0.0
            if r >= 1:
                term = term + (f + p - r) * values[r - 1]
            new.append(term / p)
        values = new
    local = torch.stack(values, dim=-1)  # (N, d_in, order + 1)
    index = s.long().unsqueeze(-1) - order + torch.arange(order + 1, device=x.device)
    valid = (index >= 0) & (index < n_basis)
    pad = order + 1  # invalid entries land in columns that are cut off
    index = torch.where(valid, index + pad, torch.zeros_like(index))
    out = torch.zeros(*x.shape, n_basis + pad, dtype=local.dtype, device=x.device)
    out = out.scatter_add(-1, index, torch.where(valid, local, torch.zeros_like(local)))
    return out[..., pad:]
