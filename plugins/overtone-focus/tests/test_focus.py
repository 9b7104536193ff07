"""FOCUS and Signum against float64 NumPy implementations of the papers' equations."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from overtone import ConfigError
from overtone.registry import registry
from overtone.testing import check_plugin
from overtone_focus import FOCUS, Signum


def numpy_focus(theta, grads, lr, beta1, beta2, gamma, wd, decay_first):
    """Algorithm 1 of arXiv 2501.12243 in float64 NumPy, one element-wise step per gradient."""
    theta = theta.copy()
    m = np.zeros_like(theta)
    bar = np.zeros_like(theta)
    for t, g in enumerate(grads, start=1):
        m = beta1 * m + (1 - beta1) * g
        bar = beta2 * bar + (1 - beta2) * theta
        hat = bar / (1 - beta2**t)
        if decay_first:
            theta = theta - lr * wd * hat
        theta = theta - lr * (np.sign(m) + gamma * exact_sign(theta - hat, theta))
        if not decay_first:
            theta = theta - lr * wd * hat
    return theta


def exact_sign(diff, scale):
    """sign(diff), with |diff| at rounding level counted as the exact tie it is (t = 1: theta_hat = theta)."""
    return np.where(np.abs(diff) <= 1e-13 * np.abs(scale), 0.0, np.sign(diff))


def numpy_signum(theta, grads, lr, beta, wd):
    theta, m = theta.copy(), np.zeros_like(theta)
    for g in grads:
        m = beta * m + (1 - beta) * g
        theta = theta * (1 - lr * wd) - lr * np.sign(m)
    return theta


def run_steps(optimizer_cls, shapes, grads, **hparams):
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(*s, dtype=torch.float64)) for s in shapes]
    start = [p.detach().clone() for p in params]
    opt = optimizer_cls(params, **hparams)
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = g.clone()
        opt.step()
    return start, params


SHAPES = [(5, 3), (7,), (2, 2, 2)]


def random_grads(n=20, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [[torch.randn(*s, generator=g, dtype=torch.float64) for s in SHAPES] for _ in range(n)]


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize(("wd", "order"), [(0.0, "paper"), (0.1, "paper"), (0.1, "reference")])
def test_focus_matches_numpy_over_20_steps(foreach, wd, order):
    grads = random_grads()
    hp = dict(lr=0.01, betas=(0.9, 0.99), gamma=0.2, weight_decay=wd, decay_order=order, foreach=foreach)
    start, params = run_steps(FOCUS, SHAPES, grads, **hp)
    for i, (p0, p) in enumerate(zip(start, params)):
        expected = numpy_focus(p0.numpy(), [g[i].numpy() for g in grads], 0.01, 0.9, 0.99, 0.2, wd, order == "paper")
        np.testing.assert_allclose(p.detach().numpy(), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("foreach", [False, True])
def test_signum_matches_numpy(foreach):
    grads = random_grads()
    start, params = run_steps(Signum, SHAPES, grads, lr=0.02, momentum=0.8, weight_decay=0.05, foreach=foreach)
    for i, (p0, p) in enumerate(zip(start, params)):
        expected = numpy_signum(p0.numpy(), [g[i].numpy() for g in grads], 0.02, 0.8, 0.05)
        np.testing.assert_allclose(p.detach().numpy(), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("cls", [FOCUS, Signum])
def test_foreach_and_single_tensor_paths_are_bit_equal_in_float32(cls):
    torch.manual_seed(3)
    a = [torch.nn.Parameter(torch.randn(64, 33)) for _ in range(3)]
    b = [torch.nn.Parameter(p.detach().clone()) for p in a]
    opt_a, opt_b = cls(a, lr=1e-2, foreach=True, weight_decay=0.1), cls(b, lr=1e-2, foreach=False, weight_decay=0.1)
    for _ in range(30):
        for pa, pb in zip(a, b):
            g = torch.randn_like(pa)
            pa.grad, pb.grad = g, g.clone()
        opt_a.step()
        opt_b.step()
    assert all(torch.equal(pa, pb) for pa, pb in zip(a, b))


def test_state_dict_resume_continues_identically():
    torch.manual_seed(4)
    model = torch.nn.Linear(6, 3)
    opt = FOCUS(model.parameters(), lr=0.05)
    x, y = torch.randn(32, 6), torch.randn(32, 3)

    def step(m, o):
        o.zero_grad()
        loss = ((m(x) - y) ** 2).mean()
        loss.backward()
        o.step()

    for _ in range(5):
        step(model, opt)
    twin = copy.deepcopy(model)
    twin_opt = FOCUS(twin.parameters(), lr=0.05)
    twin_opt.load_state_dict(copy.deepcopy(opt.state_dict()))
    for _ in range(7):
        step(model, opt)
        step(twin, twin_opt)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), twin.parameters()))


def test_closure_and_param_groups():
    w1, w2 = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(3))
    opt = FOCUS([{"params": [w1]}, {"params": [w2], "lr": 0.0}], lr=0.1, gamma=0.0)

    def closure():
        opt.zero_grad()
        loss = (w1**2).sum() + (w2**2).sum()
        loss.backward()
        return loss

    assert opt.step(closure).item() == 6.0
    torch.testing.assert_close(w1.detach(), torch.full((3,), 0.9))
    torch.testing.assert_close(w2.detach(), torch.ones(3))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"lr": -1.0}, r"FOCUS: lr = -1.0 must be a number >= 0"),
     ({"lr": float("nan")}, r"FOCUS: lr = nan must be a number >= 0"),
     ({"betas": (1.0, 0.999)}, r"FOCUS: betas\[0\] = 1.0 must be in \[0, 1\)"),
     ({"betas": [0.9, -0.1]}, r"FOCUS: betas\[1\] = -0.1 must be in \[0, 1\)"),
     ({"betas": (0.9,)}, r"FOCUS: betas = \(0.9,\) must hold two values"),
     ({"gamma": -0.1}, "FOCUS: gamma = -0.1 must be a number >= 0"),
     ({"weight_decay": -1e-3}, "FOCUS: weight_decay = -0.001 must be a number >= 0"),
     ({"decay_order": "late"}, "FOCUS: decay_order = 'late'; allowed: 'paper', 'reference'")],
)
def test_bad_focus_hyperparameters(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        FOCUS([torch.nn.Parameter(torch.ones(2))], **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"lr": -1.0}, "Signum: lr = -1.0 must be a number >= 0"),
     ({"momentum": 1.0}, r"Signum: momentum = 1.0 must be in \[0, 1\)"),
     ({"momentum": -0.5}, r"Signum: momentum = -0.5 must be in \[0, 1\)"),
     ({"weight_decay": -1.0}, "Signum: weight_decay = -1.0 must be a number >= 0")],
)
def test_bad_signum_hyperparameters(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Signum([torch.nn.Parameter(torch.ones(2))], **kwargs)


def test_bad_hyperparameters_are_value_errors():
    """ConfigError subclasses ValueError, which torch's own optimizers raise."""
    with pytest.raises(ValueError):
        FOCUS([torch.nn.Parameter(torch.ones(2))], betas=(0.9, 1.5))


@pytest.mark.parametrize("cls", [FOCUS, Signum])
def test_cache_blocks_do_not_change_results(cls, monkeypatch):
    """The CPU block cut (here 64 elements, so tensors split and pack) is bit-equal to whole tensors."""
    import overtone_focus.blocks as blocks

    torch.manual_seed(5)
    shapes = [(300, 7), (5,), (129,), (64,), (3, 3, 3)]
    a = [torch.nn.Parameter(torch.randn(s)) for s in shapes]
    b = [torch.nn.Parameter(p.detach().clone()) for p in a]
    c = [torch.nn.Parameter(p.detach().clone()) for p in a]
    opts = [cls(a, lr=1e-2, foreach=True, weight_decay=0.1), cls(b, lr=1e-2, foreach=True, weight_decay=0.1),
            cls(c, lr=1e-2, foreach=False, weight_decay=0.1)]
    sizes = [64, None, None]
    for _ in range(15):
        for pa, pb, pc in zip(a, b, c):
            g = torch.randn_like(pa)
            pa.grad, pb.grad, pc.grad = g, g.clone(), g.clone()
        for opt, size in zip(opts, sizes):
            monkeypatch.setattr(blocks, "CPU_BLOCK", size)
            opt.step()
    assert all(torch.equal(pa, pb) and torch.equal(pa, pc) for pa, pb, pc in zip(a, b, c))


def test_blocks_split_and_pack():
    from overtone_focus.blocks import blocks

    tensors = [torch.zeros(10), torch.zeros(3), torch.zeros(2, 2), torch.zeros(5, 2).t()]
    out = list(blocks((tensors, tensors), 4))
    sizes = [[t.numel() for t in block[0]] for block in out]
    assert sizes == [[4], [4], [2, 3], [4], [10]]  # 10 -> 4+4+2 (+3 packed), 2x2 whole, transposed whole
    assert sum(map(sum, sizes)) == sum(t.numel() for t in tensors)


@pytest.mark.parametrize("foreach", [False, True])
def test_late_parameter_has_its_own_bias_correction(foreach):
    """A parameter whose first gradient comes at step 4 follows Algorithm 1 from its own t = 1."""
    grads = random_grads(12, seed=7)
    early = torch.nn.Parameter(torch.randn(5, 3, dtype=torch.float64))
    late = torch.nn.Parameter(torch.randn(7, dtype=torch.float64))
    late0 = late.detach().clone()
    opt = FOCUS([early, late], lr=0.01, betas=(0.9, 0.9), gamma=0.5, foreach=foreach)
    for k, step_grads in enumerate(grads):
        early.grad = step_grads[0].clone()
        late.grad = step_grads[1].clone() if k >= 3 else None
        opt.step()
    expected = numpy_focus(late0.numpy(), [g[1].numpy() for g in grads[3:]], 0.01, 0.9, 0.9, 0.5, 0.0, True)
    np.testing.assert_allclose(late.detach().numpy(), expected, rtol=0, atol=1e-12)


def test_bfloat16_parameters_keep_a_float32_average():
    """bf16 parameters: the average is float32 and tracks a parameter that bf16 could not average."""
    p = torch.nn.Parameter(torch.full((4,), 1.0, dtype=torch.bfloat16))
    opt = FOCUS([p], lr=0.0)
    for _ in range(50):
        p.grad = torch.ones_like(p)
        opt.step()
    bar = opt.state[p]["param_avg"]
    assert bar.dtype == torch.float32
    torch.testing.assert_close(bar / (1 - 0.999**50), torch.ones(4), rtol=1e-5, atol=0)


def test_registry_and_contract():
    from overtone_focus import plugin

    assert {c.name for c in check_plugin(plugin)} == {"focus", "signum"}
    opt = registry().get("optimizer", "focus").create([torch.nn.Parameter(torch.ones(2))], betas=[0.8, 0.99])
    assert isinstance(opt, FOCUS) and opt.defaults["betas"] == (0.8, 0.99)
    assert isinstance(registry().get("optimizer", "signum").create([torch.nn.Parameter(torch.ones(2))]), Signum)
    # every constructor keyword is declared with the constructor's default
    import inspect

    for name, cls in (("focus", FOCUS), ("signum", Signum)):
        declared = registry().get("optimizer", name).params
        signature = inspect.signature(cls.__init__).parameters
        for key, param in signature.items():
            if key in ("self", "params"):
                continue
            default = getattr(declared[key], "default", declared[key])
            assert (list(default) if isinstance(default, (list, tuple)) else default) == (
                list(param.default) if isinstance(param.default, tuple) else param.default), key
        assert set(declared) == set(signature) - {"self", "params"}


@pytest.mark.parametrize("wd", [0.0, 0.1])
def test_agrees_with_pytorch_optimizer_peer(wd):
    """pytorch-optimizer's FOCUS (paper order) and SignSGD(momentum) give the same parameters in float64.

    The peer computes ``theta - theta_bar / c``, we ``c theta - theta_bar``: the same sign except at
    rounding-level ties, which random float64 data does not hit.
    """
    import pytorch_optimizer as peer  # installed by the tox env (a test dependency, not a runtime one)

    grads = random_grads(20, seed=9)
    _, ours = run_steps(FOCUS, SHAPES, grads, lr=0.01, gamma=0.1, weight_decay=wd)
    _, theirs = run_steps(peer.FOCUS, SHAPES, grads, lr=0.01, gamma=0.1, weight_decay=wd)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=0, atol=1e-12)
    _, ours = run_steps(Signum, SHAPES, grads, lr=0.01, momentum=0.9, weight_decay=wd)
    _, theirs = run_steps(peer.SignSGD, SHAPES, grads, lr=0.01, momentum=0.9, weight_decay=wd)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=0, atol=1e-12)


def test_listing_plugins_does_not_import_torch():
    import os
    import subprocess
    import sys

    code = ("import overtone, sys; r = overtone.registry(); assert 'torch' not in sys.modules, 'torch imported'; "
            "assert r.get('optimizer', 'focus') and r.get('optimizer', 'signum')")
    env = dict(os.environ, OVERTONE_LOAD_PLUGINS="overtone-focus")  # this plugin alone: others are not ours
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr


def test_state_dict_round_trip_keeps_bfloat16_parameters_float32_average():
    """torch casts state to the parameter dtype on load; FOCUS keeps param_avg float32 (bit-equal resume)."""
    torch.manual_seed(6)
    p = torch.nn.Parameter(torch.randn(40).to(torch.bfloat16))
    opt = FOCUS([p], lr=1e-2)
    for _ in range(5):
        p.grad = torch.randn_like(p)
        opt.step()
    twin = torch.nn.Parameter(p.detach().clone())
    twin_opt = FOCUS([twin], lr=1e-2)
    twin_opt.load_state_dict(copy.deepcopy(opt.state_dict()))
    assert twin_opt.state[twin]["param_avg"].dtype == torch.float32
    assert torch.equal(twin_opt.state[twin]["param_avg"], opt.state[p]["param_avg"])
    for _ in range(5):
        g = torch.randn_like(p)
        p.grad, twin.grad = g, g.clone()
        opt.step()
        twin_opt.step()
    assert torch.equal(p, twin)
