"""Basis functions against independent references: pykan's B_batch and numpy's Chebyshev series."""

import numpy as np
import pytest
import torch
from overtone_torch.kan.basis import (
    bspline_basis,
    chebyshev_basis,
    curve,
    fit_coefficients,
    uniform_bspline_basis,
    uniform_grid,
)

spline = pytest.importorskip("kan.spline", reason="pykan is the reference: pip install pykan")


@pytest.mark.parametrize("order", [0, 1, 2, 3, 5])
@pytest.mark.parametrize("grid_size", [1, 5, 13])
def test_bspline_basis_matches_pykan(order, grid_size):
    g = torch.Generator().manual_seed(order * 100 + grid_size)
    x = torch.rand(300, 4, generator=g, dtype=torch.float64) * 3.0 - 1.5  # beyond the grid too
    grid = uniform_grid(4, grid_size, order, -1.0, 1.0, dtype=torch.float64)
    reference_grid = spline.extend_grid(torch.linspace(-1, 1, grid_size + 1, dtype=torch.float64)
                                        [None, :].expand(4, -1), k_extend=order)
    torch.testing.assert_close(grid, reference_grid, rtol=0, atol=1e-14)
    ours = bspline_basis(x, reference_grid, order)
    theirs = spline.B_batch(x, reference_grid, k=order).to(torch.float64)  # bool at order 0
    assert ours.shape == (300, 4, grid_size + order)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-12)
    local = uniform_bspline_basis(x, reference_grid, order)
    torch.testing.assert_close(local, theirs, rtol=0, atol=1e-12)


@pytest.mark.parametrize("order", [1, 2, 3])
def test_local_basis_gradient_in_x_matches_pykan(order):
    """Deeper layers differentiate the basis in their inputs: d B / d x agrees with pykan's."""
    grid = uniform_grid(3, 7, order, -1.0, 1.0, dtype=torch.float64)
    weights = torch.randn(50, 3, 7 + order, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    grads = []
    for basis in (lambda v: uniform_bspline_basis(v, grid, order), lambda v: spline.B_batch(v, grid, k=order)):
        x = (torch.rand(50, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 3 - 1.5)
        x.requires_grad_(True)
        (basis(x) * weights).sum().backward()
        grads.append(x.grad)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-9, atol=1e-10)
    assert grads[0].abs().max() > 0


def test_bsplines_sum_to_one_on_the_grid_range():
    x = torch.linspace(-1, 1 - 1e-9, 1001, dtype=torch.float64)[:, None]
    values = bspline_basis(x, uniform_grid(1, 7, 3, -1.0, 1.0, dtype=torch.float64), 3)
    torch.testing.assert_close(values.sum(-1), torch.ones(1001, 1, dtype=torch.float64), rtol=0, atol=1e-13)
    assert (values >= 0).all()


def test_chebyshev_basis_matches_numpy():
    u = np.random.default_rng(0).uniform(-1, 1, size=(200, 3))
    ours = chebyshev_basis(torch.from_numpy(u), 9).numpy()
    np.testing.assert_allclose(ours, np.polynomial.chebyshev.chebvander(u, 9), rtol=0, atol=1e-12)


def test_fit_coefficients_recovers_a_spline_exactly():
    g = torch.Generator().manual_seed(1)
    grid = uniform_grid(3, 6, 3, -1.0, 1.0, dtype=torch.float64)
    coef = torch.randn(3, 2, 9, generator=g, dtype=torch.float64)
    x = torch.linspace(-1, 1, 200, dtype=torch.float64)[:, None].expand(-1, 3)
    basis = bspline_basis(x, grid, 3)
    torch.testing.assert_close(fit_coefficients(basis, curve(basis, coef)), coef, rtol=0, atol=1e-10)
    reference = spline.curve2coef(x, curve(basis, coef), grid, 3)
    torch.testing.assert_close(fit_coefficients(basis, curve(basis, coef)), reference, rtol=0, atol=1e-9)


def test_fit_coefficients_interpolates_underdetermined_systems():
    """The initial fit (G + 1 points, G + k B-splines) is solved exactly and the same every call."""
    grid = uniform_grid(2, 50, 3, -1.0, 1.0)
    points = torch.linspace(-1, 1, 51)[:, None].expand(-1, 2)
    basis = uniform_bspline_basis(points, grid, 3)
    noise = torch.rand(51, 2, 4, generator=torch.Generator().manual_seed(0)) - 0.5
    fits = [fit_coefficients(basis, noise) for _ in range(5)]
    assert all(torch.equal(f, fits[0]) for f in fits)
    assert fits[0].dtype == torch.float32
    torch.testing.assert_close(curve(basis, fits[0]), noise, rtol=0, atol=1e-5)
