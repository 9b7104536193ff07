"""KANLayer side by side with pykan's KANLayer (float64), and the Chebyshev option against numpy."""

import numpy as np
import pytest
import torch
from overtone_torch.kan.layer import KANLayer

pykan_layer = pytest.importorskip("kan.KANLayer", reason="pykan is the reference: pip install pykan")
from kan.spline import coef2curve  # noqa: E402


def paired(d_in, d_out, grid_size, order, seed=0):
    """A pykan layer and ours holding the same grid, coefficients, scales and mask."""
    torch.manual_seed(seed)
    theirs = pykan_layer.KANLayer(in_dim=d_in, out_dim=d_out, num=grid_size, k=order)
    ours = KANLayer(d_in, d_out, grid_size=grid_size, order=order)
    with torch.no_grad():
        theirs.mask.copy_((torch.rand(d_in, d_out) > 0.2).double())
        for name in ("grid", "coef", "scale_base", "scale_sp", "mask"):
            getattr(ours, name).copy_(getattr(theirs, name))
    return ours, theirs


@pytest.mark.parametrize(("d_in", "d_out", "grid_size", "order"), [(1, 1, 5, 3), (3, 7, 5, 3), (8, 4, 20, 2),
                                                                   (5, 5, 3, 1)])
def test_layer_output_and_gradients_match_pykan(float64, d_in, d_out, grid_size, order):
    ours, theirs = paired(d_in, d_out, grid_size, order)
    x = torch.rand(257, d_in) * 2.6 - 1.3  # inside and outside the grid range
    x_ours, x_theirs = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    y_ours, y_theirs = ours(x_ours), theirs(x_theirs)[0]
    torch.testing.assert_close(y_ours, y_theirs, rtol=0, atol=1e-6)
    assert (y_ours - y_theirs).abs().max() < 1e-12  # float64 agrees to rounding
    weights = torch.randn(257, d_out)
    (y_ours * weights).sum().backward()
    (y_theirs * weights).sum().backward()
    for name in ("coef", "scale_base", "scale_sp"):
        torch.testing.assert_close(getattr(ours, name).grad, getattr(theirs, name).grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(x_ours.grad, x_theirs.grad, rtol=1e-9, atol=1e-10)  # what a deeper layer needs


def test_initialisation_follows_pykan_shapes_and_scales(float64):
    ours, theirs = KANLayer(6, 3, grid_size=5), pykan_layer.KANLayer(in_dim=6, out_dim=3, num=5, k=3)
    for name in ("grid", "coef", "scale_base", "scale_sp", "mask"):
        assert getattr(ours, name).shape == getattr(theirs, name).shape, name
    torch.testing.assert_close(ours.grid, theirs.grid, rtol=0, atol=1e-14)
    torch.testing.assert_close(ours.scale_sp, theirs.scale_sp)
    assert ours.scale_base.abs().max() <= 6**-0.5
    assert ours.coef.abs().max() < 0.5  # noise of size 0.5 / G = 0.1 at the grid points


def spline_error(grid_fine, coef_fine, grid, coef, points):
    return (coef2curve(points, grid_fine, coef_fine, 3) - coef2curve(points, grid, coef, 3)).abs().max().item()


def test_grid_extension_keeps_the_function_as_pykan_does(float64):
    """Nested grids 5 -> 10 -> 20: the old spline is in the new space; both keep it to rounding."""
    ours, theirs = paired(3, 4, 5, 3)
    points = torch.linspace(-1, 1, 2001)[:, None].expand(-1, 3)
    start = ours.edge_functions(points).detach()
    for size in (10, 20):
        ours.extend_grid(size)
        child = pykan_layer.KANLayer(in_dim=3, out_dim=4, num=size, k=3)
        child.initialize_grid_from_parent(theirs, torch.rand(500, 3) * 2 - 1)
        torch.testing.assert_close(ours.grid, child.grid, rtol=0, atol=1e-12)
        pykan_error = spline_error(child.grid, child.coef, theirs.grid, theirs.coef, points)
        ours_error = (ours.edge_functions(points) - start).abs().max().item()
        assert pykan_error < 1e-10 and ours_error < 1e-10, (pykan_error, ours_error)
        theirs = child
    assert ours.coef.shape == (3, 4, 23)


def test_grid_extension_to_a_non_nested_grid_is_no_worse_than_pykan(float64):
    """5 -> 7 intervals: the old spline is not representable; least squares keeps it closely."""
    ours, theirs = paired(2, 3, 5, 3, seed=3)
    points = torch.linspace(-1, 1, 2001)[:, None].expand(-1, 2)
    start = ours.edge_functions(points).detach()
    ours.extend_grid(7)
    child = pykan_layer.KANLayer(in_dim=2, out_dim=3, num=7, k=3)
    child.initialize_grid_from_parent(theirs, torch.linspace(-1, 1, 1000)[:, None].expand(-1, 2))
    pykan_error = spline_error(child.grid, child.coef, theirs.grid, theirs.coef, points)
    ours_error = (ours.edge_functions(points) - start).abs().max().item()
    scale = start.abs().max().item()
    assert ours_error < 0.05 * scale
    assert ours_error <= 1.5 * pykan_error, (ours_error, pykan_error)


def test_chebyshev_layer_matches_numpy(float64):
    torch.manual_seed(0)
    layer = KANLayer(3, 2, grid_size=6, basis="chebyshev", grid_range=(-2.0, 2.0))
    with torch.no_grad():
        layer.coef.normal_()
        layer.mask[0, 1] = 0.0
    x = torch.rand(100, 3) * 6 - 3
    ours = layer(x).detach().numpy()
    xn = x.numpy()
    coef, sb, ssp, mask = (getattr(layer, n).detach().numpy() for n in ("coef", "scale_base", "scale_sp", "mask"))
    u = np.tanh(xn / 2.0)
    expected = np.zeros((100, 2))
    for i in range(3):
        for o in range(2):
            silu = xn[:, i] / (1 + np.exp(-xn[:, i]))
            edge = sb[i, o] * silu + ssp[i, o] * np.polynomial.chebyshev.chebval(u[:, i], coef[i, o])
            expected[:, o] += mask[i, o] * edge
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-12)


def test_chebyshev_extension_keeps_the_function_exactly(float64):
    layer = KANLayer(2, 2, grid_size=4, basis="chebyshev")
    x = torch.rand(50, 2) * 4 - 2
    before = layer(x).detach()
    layer.extend_grid(9)
    assert layer.coef.shape == (2, 2, 10)
    torch.testing.assert_close(layer(x).detach(), before, rtol=0, atol=1e-13)


def test_extension_must_grow_the_grid():
    layer = KANLayer(2, 2, grid_size=5)
    with pytest.raises(ValueError, match="more intervals than 5"):
        layer.extend_grid(5)


def test_state_dict_of_an_extended_layer_loads_into_a_fresh_one(float64):
    trained = KANLayer(2, 3, grid_size=5)
    trained.extend_grid(10)
    fresh = KANLayer(2, 3, grid_size=5)
    fresh.load_state_dict(trained.state_dict())
    assert fresh.grid_size == 10
    x = torch.rand(20, 2) * 2 - 1
    torch.testing.assert_close(fresh(x), trained(x), rtol=0, atol=0)
