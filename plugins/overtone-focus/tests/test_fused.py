"""The fused (compiled) paths of FOCUS and Signum against float64 NumPy, the foreach path and each other.

Every compiled kernel here is small (tensors of at most a few thousand elements) and there are
four of them (FOCUS float64, float32, bf16; Signum float32): on a cold inductor cache they cost
about 5-20 s each on a 2-core machine; later runs load them from the cache.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
import torch._dynamo.utils
from overtone import ConfigError
from overtone_focus import FOCUS, Signum, fused
from test_focus import numpy_focus, numpy_signum

# (40, 3) and (33,) get a kernel call each (PACK patched to 32), (7,) and (2, 2, 2) are gathered
SHAPES = [(40, 3), (7,), (2, 2, 2), (33,)]


@pytest.fixture(autouse=True)
def small_pack(monkeypatch):
    """Make the direct and the gathered branch both run on tiny tensors."""
    monkeypatch.setattr(fused, "PACK", 32)


def make_params(shapes, dtype, seed=0, transposed=True):
    torch.manual_seed(seed)
    params = [torch.nn.Parameter(torch.randn(*s, dtype=dtype)) for s in shapes]
    if transposed:  # a non-contiguous parameter goes through the gathered branch
        params.append(torch.nn.Parameter(torch.randn(5, 4, dtype=dtype).t()))
    return params


def grads_for(params, steps, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [[torch.randn(p.shape, generator=g, dtype=torch.float64).to(p.dtype) for p in params]
            for _ in range(steps)]


def run(cls, params, grads, **hp):
    opt = cls(params, **hp)
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = g.clone()
        opt.step()
    return opt


@pytest.mark.parametrize(("wd", "order"), [(0.0, "paper"), (0.1, "paper"), (0.1, "reference")])
def test_fused_focus_matches_numpy_and_foreach_in_float64(wd, order):
    """float64: 20 fused steps equal Algorithm 1 in NumPy float64 and the foreach path to 1e-12."""
    hp = dict(lr=0.01, betas=(0.9, 0.99), gamma=0.2, weight_decay=wd, decay_order=order)
    a = make_params(SHAPES, torch.float64)
    b = [torch.nn.Parameter(p.detach().clone()) for p in a]
    start = [p.detach().clone() for p in a]
    grads = grads_for(a, 20)
    run(FOCUS, a, grads, fused=True, **hp)
    run(FOCUS, b, grads, foreach=True, **hp)
    for i, (p0, pa, pb) in enumerate(zip(start, a, b)):
        expected = numpy_focus(p0.numpy(), [g[i].numpy() for g in grads], 0.01, 0.9, 0.99, 0.2, wd,
                               order == "paper")
        np.testing.assert_allclose(pa.detach().numpy(), expected, rtol=0, atol=1e-12)
        np.testing.assert_allclose(pa.detach().numpy(), pb.detach().numpy(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("wd", [0.0, 0.1])
def test_fused_focus_float32_is_bit_equal_to_foreach(wd):
    """float32, betas above 0.5: the kernel rounds as the foreach chain does (an FMA wherever
    ATen's lerp and add-with-alpha use one; c theta rounded before the comparison), so no sign
    flips and the same bits after 20 steps. A platform whose compiler fuses differently would
    show here first; the bound to expect then is a few flipped elements in 10^5, each moved by
    2 lr gamma (measured before the kernel used FMA: 4 of 280,000 after 20 steps)."""
    hp = dict(lr=0.01, betas=(0.9, 0.99), gamma=0.2, weight_decay=wd)
    shapes = [(64, 65), (257,), (3, 7, 11)]
    a = make_params(shapes, torch.float32, seed=3)
    b = [torch.nn.Parameter(p.detach().clone()) for p in a]
    grads = grads_for(a, 20, seed=4)
    run(FOCUS, a, grads, fused=True, **hp)
    run(FOCUS, b, grads, foreach=True, **hp)
    differing = sum(int((pa != pb).sum()) for pa, pb in zip(a, b))
    assert differing == 0, f"{differing} of {sum(p.numel() for p in a)} elements differ"


def test_fused_signum_matches_foreach_and_numpy_in_float32():
    """Signum's sign is taken of m alone, so the paths can differ only by the rounding of
    theta (1 - lr wd) - lr sign(m), one rounding in the kernel, two on the foreach path."""
    a = make_params(SHAPES, torch.float32, seed=5)
    b = [torch.nn.Parameter(p.detach().clone()) for p in a]
    start = [p.detach().double().clone() for p in a]
    grads = grads_for(a, 20, seed=6)
    run(Signum, a, grads, fused=True, lr=0.02, momentum=0.8, weight_decay=0.05)
    run(Signum, b, grads, foreach=True, lr=0.02, momentum=0.8, weight_decay=0.05)
    for i, (p0, pa, pb) in enumerate(zip(start, a, b)):
        torch.testing.assert_close(pa, pb, rtol=1e-6, atol=1e-6)
        expected = numpy_signum(p0.numpy(), [g[i].double().numpy() for g in grads], 0.02, 0.8, 0.05)
        np.testing.assert_allclose(pa.detach().double().numpy(), expected, rtol=0, atol=1e-5)


def test_changing_hyperparameters_or_step_never_recompiles():
    """After the first step, new lr, betas, gamma, weight decay, decay order, step counts and
    tensor lengths run the same compiled kernel: dynamo compiles no new graph."""
    params = make_params([(40, 3), (9,)], torch.float32, seed=7, transposed=False)
    opt = FOCUS(params, lr=0.01, fused=True)
    grads = grads_for(params, 8, seed=8)
    for p, g in zip(params, grads[0]):
        p.grad = g
    opt.step()
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    settings = [dict(lr=0.02), dict(betas=(0.8, 0.9)), dict(gamma=0.3), dict(weight_decay=0.1),
                dict(decay_order="reference"), dict(lr=1e-4, betas=(0.95, 0.999))]
    extra = torch.nn.Parameter(torch.randn(123))
    opt.add_param_group({"params": [extra]})
    for change, step_grads in zip(settings, grads[1:]):
        opt.param_groups[0].update(change)
        for p, g in zip(params, step_grads):
            p.grad = g
        extra.grad = torch.randn_like(extra)
        opt.step()
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == graphs


@pytest.mark.parametrize("save_fused", [True, False])
def test_state_dict_moves_between_fused_and_foreach(save_fused):
    """Saved by one path, loaded into the other: the loader keeps its own path and both continue
    as one optimizer would (float64, 1e-12)."""
    hp = dict(lr=0.01, betas=(0.9, 0.99), gamma=0.2, weight_decay=0.1)
    first, second = (dict(fused=True), dict(foreach=True)) if save_fused else (dict(foreach=True), dict(fused=True))
    a = make_params(SHAPES, torch.float64, seed=9)
    grads = grads_for(a, 12, seed=10)
    opt = run(FOCUS, a, grads[:5], **first, **hp)
    b = [torch.nn.Parameter(p.detach().clone()) for p in a]
    twin = FOCUS(b, **second, **hp)
    twin.load_state_dict(copy.deepcopy(opt.state_dict()))
    assert bool(twin.param_groups[0]["fused"]) == bool(second.get("fused"))
    assert all(isinstance(twin.state[p]["step"], int) for p in b)
    for step_grads in grads[5:]:
        for p, q, g in zip(a, b, step_grads):
            p.grad, q.grad = g.clone(), g.clone()
        opt.step()
        twin.step()
    for p, q in zip(a, b):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=0, atol=1e-12)


def bf16_emulation(theta, grads, lr, beta1, beta2, gamma, wd):
    """FOCUS (paper order) computed in float64 from the stored values, rounding theta and m to
    bf16 and theta_bar to float32 once per step: what a fused bf16 step stores."""
    def bf16(x):
        return torch.from_numpy(x).to(torch.bfloat16).double().numpy()

    m, bar = np.zeros_like(theta), np.zeros_like(theta)
    for t, g in enumerate(grads, start=1):
        m_new = m + (1 - beta1) * (g - m)
        bar = (bar + (1 - beta2) * (theta - bar)).astype(np.float32).astype(np.float64)
        c = 1 - beta2**t
        th = theta - lr * wd / c * bar
        th = th - lr * (np.sign(m_new) + gamma * np.sign(th * c - bar))
        theta, m = bf16(th), bf16(m_new)
    return theta


def test_fused_bfloat16_keeps_float32_average_and_rounds_once_per_step():
    """bf16 parameters: float32 average, bf16 momentum; theta computed in float32 and rounded
    once per step. Agreement with a float64 emulation of that rounding: 99% of elements within
    one bf16 ulp after 10 steps."""
    a = make_params([(40, 3), (33,)], torch.bfloat16, seed=11, transposed=False)
    start = [p.detach().double().numpy() for p in a]
    grads = grads_for(a, 10, seed=12)
    opt = run(FOCUS, a, grads, fused=True, lr=0.01, betas=(0.9, 0.99), gamma=0.0, weight_decay=0.1)
    assert all(opt.state[p]["param_avg"].dtype == torch.float32 for p in a)
    assert all(opt.state[p]["exp_avg"].dtype == torch.bfloat16 for p in a)
    for i, (p0, p) in enumerate(zip(start, a)):
        expected = bf16_emulation(p0, [g[i].double().numpy() for g in grads], 0.01, 0.9, 0.99, 0.0, 0.1)
        got = p.detach().double().numpy()
        ulp = np.abs(expected) * 2.0**-7
        assert np.mean(np.abs(got - expected) <= ulp) >= 0.99


@pytest.mark.parametrize("cls", [FOCUS, Signum])
def test_missing_compiler_warns_once_and_runs_foreach(cls):
    """No C++ compiler (simulated: inductor searches for a name that does not exist): one
    one-line warning, then exactly the foreach path's results."""
    import torch._inductor.config as inductor_config

    a = make_params(SHAPES, torch.float32, seed=13)
    b = [torch.nn.Parameter(p.detach().clone()) for p in a]
    grads = grads_for(a, 3, seed=14)
    with inductor_config.patch({"cpp.cxx": ("overtone-test-no-such-cxx",)}), pytest.warns(RuntimeWarning) as record:
        run(cls, a, grads, fused=True, lr=0.01, weight_decay=0.1)
    messages = [str(w.message) for w in record]
    assert len(messages) == 1 and "\n" not in messages[0], messages
    assert "no compiler for cpu" in messages[0] and "foreach path" in messages[0]
    run(cls, b, grads, foreach=True, lr=0.01, weight_decay=0.1)
    assert all(torch.equal(pa, pb) for pa, pb in zip(a, b))


def test_compile_failure_falls_back_with_the_cause(monkeypatch):
    """A kernel that fails to build warns once, naming the cause, and the step still happens."""
    def broken(*args):
        raise RuntimeError("inductor could not build the kernel\nlong traceback ...")

    monkeypatch.setattr(fused, "compiled", lambda name: broken)
    a = make_params(SHAPES, torch.float32, seed=15)
    b = [torch.nn.Parameter(p.detach().clone()) for p in a]
    grads = grads_for(a, 3, seed=16)
    with pytest.warns(RuntimeWarning, match=r"fused step failed \(RuntimeError: inductor could not build"):
        run(FOCUS, a, grads, fused=True, lr=0.01)
    run(FOCUS, b, grads, foreach=True, lr=0.01)
    assert all(torch.equal(pa, pb) for pa, pb in zip(a, b))


@pytest.mark.parametrize("cls", [FOCUS, Signum])
@pytest.mark.parametrize(
    ("params", "kwargs", "message"),
    [(lambda: [torch.nn.Parameter(torch.ones(2))], dict(fused=True, foreach=True),
      "fused=True and foreach=True exclude each other"),
     (lambda: [torch.nn.Parameter(torch.ones(2))], dict(capturable=True), "capturable=True needs fused=True"),
     (lambda: [torch.nn.Parameter(torch.ones(2))], dict(fused=True, capturable=True),
      "capturable=True is for CUDA tensors"),
     (lambda: [torch.nn.Parameter(torch.ones(2, device="meta"))], dict(fused=True),
      "fused=True supports CPU and CUDA tensors, not meta"),
     (lambda: [torch.nn.Parameter(torch.ones(2, dtype=torch.long), requires_grad=False)], dict(fused=True),
      "fused=True needs floating-point parameters")],
)
def test_bad_fused_options(cls, params, kwargs, message):
    with pytest.raises(ConfigError, match=f"{cls.__name__}: {message}"):
        cls(params(), **kwargs)


def test_fused_refuses_sparse_gradients():
    p = torch.nn.Parameter(torch.ones(3))
    opt = FOCUS([p], fused=True)
    p.grad = torch.ones(3).to_sparse()
    with pytest.raises(RuntimeError, match="FOCUS does not support sparse gradients"):
        opt.step()


@pytest.mark.parametrize("order", ["paper", "reference"])
def test_signum_is_focus_with_gamma_0_and_beta2_0(order):
    """With beta2 = 0, theta_hat = theta, so FOCUS's decay is Signum's: equal for any weight decay."""
    a = make_params(SHAPES, torch.float64, seed=17)
    b = [torch.nn.Parameter(p.detach().clone()) for p in a]
    grads = grads_for(a, 20, seed=18)
    run(Signum, a, grads, lr=0.01, momentum=0.9, weight_decay=0.3)
    run(FOCUS, b, grads, lr=0.01, betas=(0.9, 0.0), gamma=0.0, weight_decay=0.3, decay_order=order)
    for pa, pb in zip(a, b):
        np.testing.assert_allclose(pa.detach().numpy(), pb.detach().numpy(), rtol=0, atol=1e-12)


def test_signum_is_focus_with_gamma_0_only_without_weight_decay():
    """gamma = 0, beta2 = 0.999: bit-equal when weight_decay = 0, different when it is not
    (FOCUS decays with the bias-corrected average of the parameters, Signum with the parameters)."""
    for wd, same in ((0.0, True), (0.1, False)):
        a = make_params(SHAPES, torch.float32, seed=19)
        b = [torch.nn.Parameter(p.detach().clone()) for p in a]
        grads = grads_for(a, 20, seed=20)
        run(Signum, a, grads, lr=0.01, momentum=0.9, weight_decay=wd, foreach=True)
        run(FOCUS, b, grads, lr=0.01, betas=(0.9, 0.999), gamma=0.0, weight_decay=wd, foreach=True)
        assert all(torch.equal(pa, pb) for pa, pb in zip(a, b)) == same


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (none on the CI machine)")
@pytest.mark.parametrize("cls", [FOCUS, Signum])
def test_capturable_fused_step_replays_under_a_cuda_graph(cls):
    """CUDA: steps captured once in a CUDA graph and replayed equal eager fused steps (float32)."""
    torch.manual_seed(21)
    a = [torch.nn.Parameter(torch.randn(4096, device="cuda")) for _ in range(3)]
    b = [torch.nn.Parameter(p.detach().clone()) for p in a]
    grads = [[torch.randn_like(p) for p in a] for _ in range(6)]
    eager = cls(a, lr=0.01, weight_decay=0.1, fused=True)
    graphed = cls(b, lr=0.01, weight_decay=0.1, fused=True, capturable=True)
    static = [torch.zeros_like(p) for p in b]
    for p, s in zip(b, static):
        p.grad = s
    for s, g in zip(static, grads[0]):
        s.copy_(g)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        graphed.step()  # warm-up: state and compiled kernels exist before capture
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        graphed.step()
    for p, g in zip(a, grads[0]):
        p.grad = g.clone()
    eager.step()
    for step_grads in grads[1:]:
        for s, g in zip(static, step_grads):
            s.copy_(g)
        graph.replay()
        for p, g in zip(a, step_grads):
            p.grad = g.clone()
        eager.step()
    torch.cuda.synchronize()
    for pa, pb in zip(a, b):
        torch.testing.assert_close(pa, pb, rtol=0, atol=1e-5)


def test_cpu_loop_is_built_and_equals_the_compiled_kernel():
    """float32 on CPU runs the direct C++ loop (built wherever inductor has a vector ISA, as on
    CI); it gives the compiled kernel's bits at lengths around the 16-wide vector (masked tails)
    and split into 65,536-element blocks over two OpenMP threads, with zero momenta and
    gradients (sign 0) among the elements."""
    from torch._inductor.cpu_vec_isa import pick_vec_isa

    loop = fused.cpu_focus_loop()
    assert (loop is not None) == bool(pick_vec_isa())
    if loop is None:
        return
    kernel = torch.compile(fused.focus_kernel, dynamic=True, fullgraph=True,
                           options={"cpp.enable_floating_point_contract_flag": "fast"})
    hp = torch.tensor([0.1, 0.01, 0.3, 0.2, -1e-3, 0.0, -1e-4])
    for n, threads in ((1, 1), (15, 1), (16, 1), (17, 1), (1000, 1), (200_003, 2)):
        torch.manual_seed(n)
        a = [torch.randn(n) * 0.01 for _ in range(4)]
        a[1][::3] = 0.0
        a[2][::3] = 0.0
        b = [t.clone() for t in a]
        for _ in range(5):
            kernel(*a, hp)
            loop(*b, hp, n, threads)  # 200,003 elements: four blocks on two threads, a short last one
        assert all(torch.equal(x, y) for x, y in zip(a, b)), n


def test_without_the_cpu_loop_the_compiled_kernel_gives_the_same_bits(monkeypatch):
    monkeypatch.setattr(fused, "_cpu_loop", [None])
    monkeypatch.setattr(fused, "_compiled", {})
    torch._dynamo.reset()  # earlier tests' compilations count towards dynamo's recompile limit
    hp = dict(lr=0.01, betas=(0.9, 0.99), gamma=0.2, weight_decay=0.1)
    a = make_params([(64, 65), (257,)], torch.float32, seed=17)
    b = [torch.nn.Parameter(p.detach().clone()) for p in a]
    grads = grads_for(a, 5, seed=18)
    with warnings.catch_warnings():  # a fallback to the foreach path would compare it with itself
        warnings.simplefilter("error", RuntimeWarning)
        run(FOCUS, a, grads, fused=True, **hp)
    run(FOCUS, b, grads, foreach=True, **hp)
    assert all(torch.equal(pa, pb) for pa, pb in zip(a, b))


@pytest.mark.parametrize("cls", [FOCUS, Signum])
def test_parameters_of_many_ranks_share_one_compiled_graph(cls):
    """float64 parameters of ranks 1 to 9 (PACK patched to 32: each gets its own kernel call),
    one with a storage offset, plus gathered small ones: one graph serves them all, so dynamo's
    recompile limit (8) is never hit and no fallback warning comes; results equal foreach (1e-12).

    Passing ``view(-1)`` of each parameter compiled a graph per rank of the viewed base and ran
    out of the limit here (FailOnRecompileLimitHit, then the foreach path with a warning)."""
    shapes = [(40,), (6, 7), (2, 3, 7), (2, 2, 3, 5), (2, 2, 2, 3, 2), (2, 2, 2, 2, 2, 3), (2,) * 5 + (3, 2),
              (2,) * 8, (2,) * 6 + (3, 2, 2), (5,), (3, 3)]
    a = make_params(shapes, torch.float64, seed=21, transposed=False)
    a.append(torch.nn.Parameter(torch.randn(90, dtype=torch.float64)[7:60]))  # storage offset 7
    assert a[-1].storage_offset() == 7
    b = [torch.nn.Parameter(p.detach().clone()) for p in a]
    grads = grads_for(a, 3, seed=22)
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        run(cls, a, grads, fused=True, lr=0.01, weight_decay=0.1)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] - graphs <= 1
    run(cls, b, grads, foreach=True, lr=0.01, weight_decay=0.1)
    for pa, pb in zip(a, b):
        np.testing.assert_allclose(pa.detach().numpy(), pb.detach().numpy(), rtol=0, atol=1e-12)
