"""The chunked harmonic loss's C++ row loop (CPU) and ATen's kernels, each against the float64
NumPy reference, for any exponent, both eps modes, floored distances and rows longer than the
loop's 1,024-element sum blocks (with a tail that no vector fills)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from harmonic_reference import numpy_harmonic
from overtone_harmonic import chunked_harmonic_loss, cpu_rows


def test_row_loop_is_built_for_float32_and_float64():
    """With a C++ compiler and a vector ISA (as on the CI machine) the loop builds for both
    dtypes; the chunked loss would otherwise silently run ATen's slower kernels."""
    from torch._inductor.cpu_vec_isa import pick_vec_isa

    assert pick_vec_isa(), "no vector ISA: inductor cannot build the row loop here"
    assert cpu_rows.row_kernel(torch.float32) is not None
    assert cpu_rows.row_kernel(torch.float64) is not None
    assert cpu_rows.row_kernel(torch.float16) is None


@pytest.mark.parametrize("path", ["row loop", "aten"])
@pytest.mark.parametrize(
    ("n", "eps", "mode"),
    [
        (1.0, 1e-12, "floor"),
        (7.0, 1e-3, "floor"),
        (55.4, 1e-12, "floor"),
        (1536.0, 1e-12, "floor"),
        (3.0, 1e-4, "add"),
    ],
)
def test_both_paths_match_numpy_in_float64(monkeypatch, path, n, eps, mode):
    """float64, V = 2,061 (two sum blocks and a 13-element tail), chunks of 4 with a short last
    one, an ignored row, one row exactly at its target's centre and one at another centre (the
    floor active in "floor" mode): loss and both gradients equal NumPy's to 1e-10."""
    if path == "aten":
        monkeypatch.setitem(cpu_rows._built, torch.float64, None)
    else:
        assert cpu_rows.row_kernel(torch.float64) is not None
    torch.manual_seed(5)
    n_classes, d = 2061, 8
    w = torch.randn(n_classes, d, dtype=torch.float64)
    t = torch.randint(0, n_classes, (11,))
    x = torch.randn(11, d, dtype=torch.float64)
    x[:4] = w[t[:4]] + 0.3 * x[:4]
    x[4] = w[t[4]]  # at its own centre: d^2 = 0
    x[5] = w[(t[5] + 1) % n_classes]  # at another centre
    t[8] = -100
    xi, wi = x.clone().requires_grad_(), w.clone().requires_grad_()
    loss = chunked_harmonic_loss(xi, wi, t, n, eps=eps, chunk_size=4, eps_mode=mode)
    loss.backward()
    ref_loss, _, ref_gx, ref_gw = numpy_harmonic(x.numpy(), w.numpy(), t.numpy(), n, eps, mode)
    np.testing.assert_allclose(loss.item(), ref_loss, rtol=1e-10)
    for got, ref in ((xi.grad, ref_gx), (wi.grad, ref_gw)):
        np.testing.assert_allclose(got.numpy(), ref, rtol=0, atol=1e-10 * np.abs(ref).max())


@pytest.mark.parametrize("n", [2.0, 55.4])
def test_float32_row_loop_matches_float64_numpy_and_aten(monkeypatch, n):
    """float32 through the row loop against NumPy float64 (loss 1e-5 relative, gradients 1e-4 of
    their largest entry) and against ATen's float32 kernels (the same tolerances)."""
    torch.manual_seed(6)
    n_classes, d = 3000, 32
    w = torch.randn(n_classes, d)
    t = torch.randint(0, n_classes, (20,))
    x = w[t] + 1.2 * torch.randn(20, d)  # near the target, not at it: a loss of order 1
    out = {}
    for path in ("row loop", "aten"):
        if path == "aten":
            monkeypatch.setitem(cpu_rows._built, torch.float32, None)
        xi, wi = x.clone().requires_grad_(), w.clone().requires_grad_()
        loss = chunked_harmonic_loss(xi, wi, t, n, chunk_size=8)
        loss.backward()
        out[path] = (loss.item(), xi.grad.double().numpy(), wi.grad.double().numpy())
    ref = numpy_harmonic(x.double().numpy(), w.double().numpy(), t.numpy(), n)
    np.testing.assert_allclose(out["row loop"][0], out["aten"][0], rtol=1e-5)
    for got in out.values():
        np.testing.assert_allclose(got[0], ref[0], rtol=1e-5)
        for g, r in zip(got[1:], ref[2:]):
            np.testing.assert_allclose(g, r, rtol=0, atol=1e-4 * np.abs(r).max())
    for a, b in zip(out["row loop"][1:], out["aten"][1:]):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-4 * np.abs(b).max())
