"""The Triton harmonic head (``impl = "triton"``) against the float64 NumPy definition.

Without a CUDA device the kernels run in Triton's CPU interpreter (conftest.py sets
``TRITON_INTERPRET=1`` before Triton is imported); shapes are small and never multiples of the
16-wide tiles, so every kernel sees partial row, centre and feature blocks. Skipped only when
triton is not installed (the ``overtone-harmonic[triton]`` extra).
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
import torch
from harmonic_reference import numpy_harmonic
from overtone import ConfigError
from overtone.registry import registry
from overtone_harmonic import chunked_harmonic_loss

pytest.importorskip("triton")
from overtone_harmonic import triton_head  # noqa: E402
from overtone_harmonic.triton_head import triton_harmonic_loss  # noqa: E402

DEVICE = "cpu" if triton_head.INTERPRETED else "cuda"
TILES = dict(block_n=16, block_v=16, block_d=16)


def problem(seed, n_rows=37, n_classes=53, d=24):
    """Centres, targets (one ignored) and rows, a third of them near their own centre."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(n_classes, d))
    t = rng.integers(0, n_classes, n_rows)
    x = rng.normal(size=(n_rows, d))
    x[: n_rows // 3] = w[t[: n_rows // 3]] + 0.3 * x[: n_rows // 3]
    t[5] = -100
    return x, w, t


def run(x, w, t, n, dtype=torch.float32, eps=1e-12, **tiles):
    xt = torch.tensor(x, dtype=dtype, device=DEVICE, requires_grad=True)
    wt = torch.tensor(w, dtype=dtype, device=DEVICE, requires_grad=True)
    loss = triton_harmonic_loss(xt, wt, torch.tensor(t, device=DEVICE), n, eps, **(tiles or TILES))
    loss.backward()
    return loss, xt.grad, wt.grad


@pytest.mark.parametrize("n", [1.0, 8.0, 55.4, 1536.0])
def test_float32_matches_float64_numpy_for_any_exponent(n):
    """Loss to 2e-6 relative (n = 1536, the reference GPT-2's 768 on d^2: 2e-5), gradients to
    2e-5 of their largest entry (1e-4 at n = 1536, the chunked path's float32 tolerance)."""
    x, w, t = problem(0)
    ref, _, gx, gw = numpy_harmonic(x, w, t, n)
    loss, got_x, got_w = run(x, w, t, n)
    tol = 1e-4 if n > 100 else 2e-5
    np.testing.assert_allclose(loss.item(), ref, rtol=2e-5 if n > 100 else 2e-6)
    np.testing.assert_allclose(got_x.cpu().numpy(), gx, rtol=0, atol=tol * np.abs(gx).max())
    np.testing.assert_allclose(got_w.cpu().numpy(), gw, rtol=0, atol=tol * np.abs(gw).max())
    assert torch.count_nonzero(got_x[5]) == 0  # the ignored row gets no gradient


@pytest.mark.parametrize("n", [2.0, 1536.0])
def test_bfloat16_inputs_accumulate_in_float32(n):
    """bf16 rows and centres: distances and sums in float32, so the loss matches float64 on the same
    (rounded) values to 1e-5; the gradients come back in bf16 and, with the backward products' bf16
    operand, agree to 2% of their largest entry."""
    x, w, t = problem(1)
    x = torch.tensor(x).to(torch.bfloat16).double().numpy()
    w = torch.tensor(w).to(torch.bfloat16).double().numpy()
    ref, _, gx, gw = numpy_harmonic(x, w, t, n)
    loss, got_x, got_w = run(x, w, t, n, dtype=torch.bfloat16)
    assert loss.dtype == torch.float32 and got_x.dtype == got_w.dtype == torch.bfloat16
    np.testing.assert_allclose(loss.item(), ref, rtol=1e-5)
    np.testing.assert_allclose(got_x.double().cpu().numpy(), gx, rtol=0, atol=2e-2 * np.abs(gx).max())
    np.testing.assert_allclose(got_w.double().cpu().numpy(), gw, rtol=0, atol=2e-2 * np.abs(gw).max())


def test_tile_sizes_do_not_change_the_result():
    """One tile covering everything against 16-wide tiles (many partial blocks, atomics from many
    programs into the same rows): equal up to float32 summation order (1e-5 of the largest entry)."""
    x, w, t = problem(2, n_rows=20, n_classes=30, d=40)
    small = run(x, w, t, 6.0)
    large = run(x, w, t, 6.0, block_n=32, block_v=32, block_d=64)
    for a, b in zip(small, large):
        a, b = a.detach(), b.detach()
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5 * float(b.abs().max()))


def test_incoming_gradient_partial_grads_and_all_ignored():
    x, w, t = problem(3, n_rows=17, n_classes=19, d=16)
    xt = torch.tensor(x, dtype=torch.float32, device=DEVICE, requires_grad=True)
    wt = torch.tensor(w, dtype=torch.float32, device=DEVICE)  # no gradient wanted for the centres
    tt = torch.tensor(t, device=DEVICE)
    (3 * triton_harmonic_loss(xt, wt, tt, 4.0, **TILES) ** 2).backward()
    x64 = torch.tensor(x, requires_grad=True)
    (3 * chunked_harmonic_loss(x64, torch.tensor(w), torch.tensor(t), 4.0) ** 2).backward()
    np.testing.assert_allclose(xt.grad.cpu().numpy(), x64.grad.numpy(), rtol=0, atol=2e-5 * float(x64.grad.abs().max()))
    xt.grad = None
    loss = triton_harmonic_loss(xt, wt, torch.full_like(tt, -100), 4.0, **TILES)
    loss.backward()
    assert loss.item() == 0.0 and torch.count_nonzero(xt.grad) == 0


def test_a_row_on_a_centre_stays_finite_as_in_the_chunked_path():
    """x = w_i floors d^2 at eps: the loss is finite (0 on its own centre, large on another's)
    and the floored entry gives no gradient, as in the chunked path. eps = 1e-3 lies above
    float32's rounding of the expanded d^2 (about 1e-6 |w|^2), so both paths floor the same entries."""
    torch.manual_seed(4)
    w = torch.randn(21, 16)
    x = torch.cat([w[2:3], w[2:3], torch.randn(3, 16)])
    t = torch.tensor([2, 0, 1, 4, 7])
    got = run(x.numpy(), w.numpy(), t.numpy(), 2.0, eps=1e-3)
    x64, w64 = x.double().requires_grad_(), w.double().requires_grad_()
    ref = chunked_harmonic_loss(x64, w64, t, 2.0, eps=1e-3)
    ref.backward()
    assert all(torch.isfinite(g).all() for g in got)
    np.testing.assert_allclose(got[0].item(), ref.item(), rtol=1e-5)
    np.testing.assert_allclose(got[1].cpu().numpy(), x64.grad.numpy(), rtol=0, atol=1e-5 * float(x64.grad.abs().max()))
    np.testing.assert_allclose(got[2].cpu().numpy(), w64.grad.numpy(), rtol=0, atol=1e-5 * float(w64.grad.abs().max()))


def test_loss_component_impl_triton_matches_impl_torch():
    make = registry().get("loss", "harmonic").create
    torch.manual_seed(5)
    fused, plain = make(d_in=24, n_classes=40, n=6.0, impl="triton"), make(d_in=24, n_classes=40, n=6.0)
    plain.weight = fused.weight
    x = torch.randn(2, 9, 24)
    t = torch.randint(0, 40, (2, 9))
    t[0, 3] = -100
    losses, grads = [], []
    for loss_fn in (fused.to(DEVICE), plain.to(DEVICE)):
        xi = x.to(DEVICE).requires_grad_()
        losses.append(loss_fn(xi, t.to(DEVICE)))
        losses[-1].backward()
        grads.append((xi.grad, loss_fn.weight.grad.clone()))
        loss_fn.weight.grad = None
    torch.testing.assert_close(losses[0], losses[1], rtol=1e-5, atol=1e-6)
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * float(b.abs().max()))
    assert "impl=triton" in repr(fused)


def test_bad_input_gives_one_line_errors(monkeypatch):
    make = registry().get("loss", "harmonic").create
    with pytest.raises(ConfigError, match="chunk_size is for impl = 'torch'"):
        make(d_in=4, n_classes=3, impl="triton", chunk_size=8)
    with pytest.raises(ConfigError, match="eps_mode = 'add' needs impl = 'torch'"):
        make(d_in=4, n_classes=3, impl="triton", eps_mode="add")
    with pytest.raises(ConfigError, match="impl"):
        make(d_in=4, n_classes=3, impl="cuda")
    loss_fn = make(d_in=16, n_classes=20, impl="triton").double().to(DEVICE)
    with pytest.raises(ConfigError, match="float64"):
        loss_fn(torch.randn(4, 16, dtype=torch.float64, device=DEVICE), torch.zeros(4, dtype=torch.long, device=DEVICE))
    with pytest.raises(ValueError, match="targets must lie in"):
        triton_harmonic_loss(torch.randn(4, 16, device=DEVICE), torch.randn(20, 16, device=DEVICE),
                             torch.tensor([0, 1, 20, -100], device=DEVICE), 2.0)
    monkeypatch.setattr(triton_head, "INTERPRETED", False)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="needs CUDA tensors"):
            triton_harmonic_loss(torch.randn(4, 16), torch.randn(20, 16), torch.zeros(4, dtype=torch.long), 2.0)
        monkeypatch.delenv("TRITON_INTERPRET")
        with pytest.raises(ConfigError, match="needs a CUDA device"):
            make(d_in=4, n_classes=3, impl="triton")
    monkeypatch.setitem(sys.modules, "triton", None)  # as if the extra were not installed
    with pytest.raises(ConfigError, match=r"pip install 'overtone-harmonic\[triton\]'"):
        make(d_in=4, n_classes=3, impl="triton")


COMPILE_FOR_GPU = r"""
import os
import sys
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from overtone_harmonic import triton_head as th

assert not th.INTERPRETED
shape = dict(n_cols=50257, d=768, BLOCK_N=64, BLOCK_V=64, BLOCK_D=32, WIDEN=False)
common = {"xn_ptr": "*fp32", "wn_ptr": "*fp32", "t_ptr": "*i64", "lse_ptr": "*fp32", "n_rows": "i32",
          "a": "fp32", "eps": "fp32", **{k: "constexpr" for k in [*shape, "IEEE"]}}
for dtype in ("bf16", "fp32"):
    consts = {**shape, "IEEE": dtype == "fp32"}
    ptrs = {"x_ptr": f"*{dtype}", "w_ptr": f"*{dtype}"}
    fwd = {**ptrs, **common, "loss_ptr": "*fp32"}
    bwd = {**ptrs, **common, **{k: "*fp32" for k in ("g_ptr", "dxw_ptr", "dwx_ptr", "rsum_ptr", "csum_ptr")}}
    for name, kernel, sig in (("forward", th._forward_kernel, fwd), ("backward", th._backward_kernel, bwd)):
        sig = {k: sig[k] for k in kernel.arg_names}
        compiled = triton.compile(ASTSource(kernel, sig, constexprs=consts), target=GPUTarget("cuda", 90, 32))
        print(dtype, name, "mma" in compiled.asm["ptx"])
"""


def test_kernels_compile_for_a_gpu_without_one():
    """Triton compiles both kernels ahead of time for sm_90 (H100/H200) at the GPT-2 head shape,
    down to a cubin with the wheel's own ptxas, in a process without TRITON_INTERPRET: the GPU
    code path builds even where no GPU is present. The bf16 products use tensor cores (``mma``
    in the PTX); the float32 ones, in IEEE precision, do not."""
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    result = subprocess.run([sys.executable, "-c", COMPILE_FOR_GPU], capture_output=True, text=True, env=env,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split("\n")[:4] == ["bf16 forward True", "bf16 backward True",
                                             "fp32 forward False", "fp32 backward False"]
