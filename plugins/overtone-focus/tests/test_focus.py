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
        theta = theta - lr * (np.sign(m) + gamma * np.sign(theta - hat))
        if not decay_first:
            theta = theta - lr * wd * hat
    return theta


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
    [({"lr": -1.0}, "lr = -1.0 must be >= 0"), ({"betas": (1.0, 0.999)}, r"betas\[0\] = 1.0 must be in \[0, 1\)"),
     ({"betas": (0.9, -0.1)}, r"betas\[1\] = -0.1 must be in \[0, 1\)"), ({"gamma": -0.1}, "gamma = -0.1 must be >= 0"),
     ({"decay_order": "late"}, "decay_order = 'late'")],
)
def test_bad_hyperparameters(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        FOCUS([torch.nn.Parameter(torch.ones(2))], **kwargs)
    if "lr" in kwargs:
        with pytest.raises(ConfigError, match=message):
            Signum([torch.nn.Parameter(torch.ones(2))], **kwargs)


def test_registry_and_contract():
    from overtone_focus import plugin

    assert {c.name for c in check_plugin(plugin)} == {"focus", "signum"}
    opt = registry().get("optimizer", "focus").create([torch.nn.Parameter(torch.ones(2))], betas=[0.8, 0.99])
    assert isinstance(opt, FOCUS) and opt.defaults["betas"] == (0.8, 0.99)


def test_agrees_with_pytorch_optimizer_peer():
    """The peer implementation (pytorch-optimizer's FOCUS) gives the same parameters, weight decay 0."""
    peer_module = pytest.importorskip("pytorch_optimizer")
    grads = random_grads(10, seed=9)
    _, ours = run_steps(FOCUS, SHAPES, grads, lr=0.01, gamma=0.1)
    _, theirs = run_steps(peer_module.FOCUS, SHAPES, grads, lr=0.01, gamma=0.1)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=0, atol=1e-12)


def test_listing_plugins_does_not_import_torch():
    import subprocess
    import sys

    code = "import overtone, sys; overtone.registry(); assert 'torch' not in sys.modules, 'torch imported'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
