"""Optimizers through the registry, against the update rules written out in float64 NumPy."""

from __future__ import annotations

import numpy as np
import overtone
import pytest
import torch
from overtone import ConfigError


def make(name: str, params, **hparams):
    return overtone.registry().get("optimizer", name).create(params, **hparams)


def quadratic_grad(p: np.ndarray) -> np.ndarray:
    """Gradient of f(p) = sum(p^4) / 4 + sum(p): p^3 + 1."""
    return p**3 + 1


def run(name: str, steps: int = 4, **hparams) -> np.ndarray:
    w = torch.nn.Parameter(torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64))
    opt = make(name, [w], **hparams)
    for _ in range(steps):
        opt.zero_grad()
        ((w**4).sum() / 4 + w.sum()).backward()
        opt.step()
    return w.detach().numpy()


def adam_reference(lr, betas, eps, wd, decoupled, steps=4):
    p = np.array([0.5, -1.0, 2.0])
    m = v = np.zeros(3)
    for t in range(1, steps + 1):
        g = quadratic_grad(p)
        if decoupled:
            p = p * (1 - lr * wd)
        else:
            g = g + wd * p
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g**2
        p = p - lr * (m / (1 - betas[0] ** t)) / (np.sqrt(v / (1 - betas[1] ** t)) + eps)
    return p


@pytest.mark.parametrize("fused", [None, False, True])
def test_adamw_matches_reference(fused):
    got = run("adamw", lr=0.05, betas=[0.8, 0.95], eps=1e-6, weight_decay=0.3, fused=fused)
    np.testing.assert_allclose(got, adam_reference(0.05, (0.8, 0.95), 1e-6, 0.3, decoupled=True), rtol=1e-12)


def test_adam_matches_reference():
    got = run("adam", lr=0.05, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1)
    np.testing.assert_allclose(got, adam_reference(0.05, (0.9, 0.99), 1e-8, 0.1, decoupled=False), rtol=1e-12)


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_matches_reference(nesterov):
    lr, mu, wd = 0.1, 0.9, 0.01
    p, buf = np.array([0.5, -1.0, 2.0]), None
    for _ in range(4):
        g = quadratic_grad(p) + wd * p
        buf = g if buf is None else mu * buf + g
        p = p - lr * (g + mu * buf if nesterov else buf)
    got = run("sgd", lr=lr, momentum=mu, nesterov=nesterov, weight_decay=wd)
    np.testing.assert_allclose(got, p, rtol=1e-12)


@pytest.mark.parametrize("name", ["adamw", "adam", "sgd"])
def test_paths_param_groups_and_state_dict(name):
    a, b = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(2))
    opt = make(name, [{"params": [a]}, {"params": [b], "lr": 0.0}], lr=0.1)
    assert opt.defaults["foreach"] is True and not opt.defaults.get("fused")  # CPU: foreach, not fused
    ((a**2).sum() + (b**2).sum()).backward()
    opt.step()
    assert (a.detach() < 1).all() and torch.equal(b.detach(), torch.ones(2))
    again = make(name, [{"params": [a]}, {"params": [b], "lr": 0.0}], lr=0.1)
    again.load_state_dict(opt.state_dict())
    assert again.state_dict()["state"].keys() == opt.state_dict()["state"].keys()
    assert make(name, [a], fused=True).defaults["fused"] is True


@pytest.mark.parametrize(("name", "hparams", "message"), [
    ("adamw", {"lr": -1.0}, "lr = -1.0 is below the minimum 0.0; allowed: 0.0 <= lr"),
    ("adam", {"betas": [0.9, 0.99, 0.999]}, "betas = [0.9, 0.99, 0.999] has 3 element(s); expected 2"),
    ("adam", {"betas": 0.9}, "betas = 0.9 is a single float; expected a list of 2 float"),
    ("adam", {"betas": [0.9, -0.1]}, "betas[1] = -0.1 is below the minimum 0.0"),
    ("adamw", {"betas": [0.9, 1.5]}, "betas[1] = 1.5 must be below 1.0; allowed: 0.0 <= betas[1] < 1.0"),
    ("adamw", {"betas": [0.9, 1]}, "betas[1] = 1.0 must be below 1.0; allowed: 0.0 <= betas[1] < 1.0"),
    ("sgd", {"nesterov": True}, "nesterov = true needs momentum > 0"),
    ("sgd", {"momentum": -0.5}, "momentum = -0.5 is below the minimum 0.0; allowed: 0.0 <= momentum"),
])
def test_bad_hyperparameters(name, hparams, message):
    with pytest.raises(ConfigError) as info:
        make(name, [torch.nn.Parameter(torch.ones(2))], **hparams)
    assert message in str(info.value) and str(info.value).startswith(f"optimizer {name!r}: ")
    assert "\n" not in str(info.value)
