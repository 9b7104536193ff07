"""One Kolmogorov-Arnold layer: a learnable function on every edge ``i -> o``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from overtone import ConfigError
from torch import nn

from overtone_torch.kan.basis import (
    chebyshev_basis,
    curve,
    fit_coefficients,
    uniform_bspline_basis,
    uniform_grid,
)

BASES = ("bspline", "chebyshev")
#: Points per basis function at which a grid extension matches the old function (least squares).
REFIT_POINTS_PER_BASIS = 8


class KANLayer(nn.Module):
    """``y_o = sum_i mask_io [scale_base_io SiLU(x_i) + scale_sp_io sum_m c_iom b_m(x_i)]`` (pykan's KANLayer).

    ``basis = "bspline"``: ``b_m`` are the ``G + k`` B-splines of order ``k = order`` on a uniform
    grid of ``G = grid_size`` intervals on ``grid_range`` extended by ``k`` knots each side
    (Liu et al. 2024, eq. 2.10-2.11), evaluated by the local recursion of
    :func:`~overtone_torch.kan.basis.uniform_bspline_basis` (the grid is always uniform). ``basis = "chebyshev"``: ``b_m = T_m(tanh(s(x)))`` for
    ``m = 0 .. G`` with ``s`` mapping ``grid_range`` affinely onto ``[-1, 1]`` (ChebyKAN's tanh
    squashing; ``order`` is unused and ``G`` is the polynomial degree).

    Initialisation follows pykan v0.2: ``scale_base ~ scale_base_mu / sqrt(d_in) + scale_base_sigma
    U(-1, 1) / sqrt(d_in)``, ``scale_sp = 1 / sqrt(d_in)``, and the spline coefficients fit
    (least squares) noise ``U(-1/2, 1/2) noise_scale / G`` at the ``G + 1`` grid points; the mask
    is all ones. Draws use torch's global generator.
    """

    def __init__(self, d_in: int, d_out: int, *, grid_size: int = 5, order: int = 3,
                 grid_range: tuple[float, float] = (-1.0, 1.0), basis: str = "bspline",
                 noise_scale: float = 0.5, scale_base_mu: float = 0.0, scale_base_sigma: float = 1.0) -> None:
        super().__init__()
        if basis not in BASES:
            raise ConfigError(f"[model] basis = {basis!r}; allowed: {', '.join(BASES)}")
        if d_in < 1 or d_out < 1 or grid_size < 1 or order < 0:
            raise ConfigError(f"[model] a KAN layer needs d_in, d_out, grid_size >= 1 and order >= 0 "
                              f"(got {d_in}, {d_out}, {grid_size}, {order})")
        low, high = float(grid_range[0]), float(grid_range[1])
        if not high > low:
            raise ConfigError(f"[model] grid_range = {list(grid_range)} must be [low, high] with low < high")
        self.d_in, self.d_out, self.order, self.basis = d_in, d_out, order, basis
        self.low, self.high, self.grid_size = low, high, grid_size
        dtype = torch.get_default_dtype()
        self.register_buffer("grid", uniform_grid(d_in, grid_size, order, low, high, dtype=dtype))
        self.register_buffer("mask", torch.ones(d_in, d_out))
        scale = d_in ** -0.5
        self.scale_base = nn.Parameter(scale_base_mu * scale + scale_base_sigma * (torch.rand(d_in, d_out) * 2 - 1) * scale)
        self.scale_sp = nn.Parameter(torch.full((d_in, d_out), scale))
        self.coef = nn.Parameter(self._initial_coef(noise_scale))

    def _initial_coef(self, noise_scale: float) -> torch.Tensor:
        """Coefficients fitting ``U(-1/2, 1/2) noise_scale / G`` at the ``G + 1`` grid points."""
        points = torch.linspace(self.low, self.high, self.grid_size + 1).unsqueeze(1).expand(-1, self.d_in)
        noise = (torch.rand(self.grid_size + 1, self.d_in, self.d_out) - 0.5) * noise_scale / self.grid_size
        if points.device.type == "meta":  # shapes only (the engine's dry build)
            return torch.empty(self.d_in, self.d_out, self.n_basis)
        return fit_coefficients(self.basis_values(points), noise)

    @property
    def n_basis(self) -> int:
        """Basis functions per edge: ``G + k`` B-splines or ``G + 1`` Chebyshev polynomials."""
        return self.grid_size + (self.order if self.basis == "bspline" else 1)

    def basis_values(self, x: torch.Tensor) -> torch.Tensor:
        """``b_m(x_i)`` for ``x (N, d_in)``: ``(N, d_in, n_basis)``."""
        if self.basis == "bspline":
            return uniform_bspline_basis(x, self.grid, self.order)
        u = torch.tanh((2 * x - (self.low + self.high)) / (self.high - self.low))
        return chebyshev_basis(u, self.grid_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, d_in) -> (N, d_out)``: one matmul for the base branch, one for the splines.

        The ``(N, d_in, d_out)`` edge activations are never formed: the spline sum is
        ``basis (N, d_in M) @ W (d_in M, d_out)`` with ``W_{(i,m),o} = mask_io scale_sp_io c_iom``.
        """
        base = F.silu(x) @ (self.scale_base * self.mask)
        weight = (self.coef * (self.scale_sp * self.mask).unsqueeze(-1)).permute(0, 2, 1)
        spline = self.basis_values(x).flatten(1) @ weight.reshape(-1, self.d_out)
        return base + spline

    def edge_functions(self, x: torch.Tensor) -> torch.Tensor:
        """The spline parts ``sum_m c_iom b_m(x_i)`` of every edge: ``(N, d_in, d_out)``."""
        return curve(self.basis_values(x), self.coef)

    @torch.no_grad()
    def extend_grid(self, grid_size: int) -> None:
        """Refine to ``grid_size`` intervals (degree, for Chebyshev) keeping each edge function.

        B-splines: the new coefficients are the least-squares fit of the old spline at
        ``REFIT_POINTS_PER_BASIS (G' + k)`` uniform points of ``grid_range`` (Liu et al. 2024,
        eq. 2.16); when the old knots are a subset of the new ones (G' a multiple of G) the
        old spline lies in the new space and is kept to rounding on ``grid_range``. Chebyshev:
        higher-degree coefficients start at zero, which keeps the function exactly. The
        ``coef`` Parameter keeps its identity (``torch.utils.swap_tensors``), so an optimizer
        still holds it, but its optimizer state has the old shape and must be dropped.
        """
        if grid_size <= self.grid_size:
            raise ValueError(f"grid extension needs more intervals than {self.grid_size} (got {grid_size})")
        coef = self.coef.data
        if self.basis == "chebyshev":
            new = torch.zeros(self.d_in, self.d_out, grid_size + 1, dtype=coef.dtype, device=coef.device)
            new[..., :coef.shape[-1]] = coef
            self.grid_size = grid_size
        else:
            n = REFIT_POINTS_PER_BASIS * (grid_size + self.order)
            points = torch.linspace(self.low, self.high, n, dtype=coef.dtype, device=coef.device)
            points = points.unsqueeze(1).expand(-1, self.d_in)
            old = self.edge_functions(points)
            self.grid = uniform_grid(self.d_in, grid_size, self.order, self.low, self.high,
                                     dtype=self.grid.dtype, device=self.grid.device)
            self.grid_size = grid_size
            new = fit_coefficients(self.basis_values(points), old)
        # swap, not .data: autograd nodes already recorded for the old shape would reject the new one
        torch.utils.swap_tensors(self.coef, nn.Parameter(new, requires_grad=self.coef.requires_grad))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        """Adopt the stored grid size (a checkpoint taken after a grid extension), then load."""
        coef = state_dict.get(prefix + "coef")
        if coef is not None and coef.shape[-1] != self.coef.shape[-1]:
            size = coef.shape[-1] - (self.order if self.basis == "bspline" else 1)
            self.grid_size = size
            self.coef.data = torch.empty(coef.shape, dtype=self.coef.dtype, device=self.coef.device)
            self.grid = uniform_grid(self.d_in, size, self.order, self.low, self.high,
                                     dtype=self.grid.dtype, device=self.grid.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return (f"d_in={self.d_in}, d_out={self.d_out}, basis={self.basis!r}, grid_size={self.grid_size}, "
                f"order={self.order}, grid_range=({self.low}, {self.high})")
