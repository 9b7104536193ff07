"""The harmonic loss against a float64 NumPy reference, gradcheck, and the paper's properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from overtone import ConfigError
from overtone.registry import registry
from overtone.testing import check_plugin


def make(**params):
    return registry().get("loss", "harmonic").create(**params)


def numpy_harmonic(x, w, t, n):
    """float64 reference from the definition: p_i = d_i^-n / sum_j d_j^-n, loss = mean -log p_y.

    Gradients by the chain rule on d_i = ||x - w_i||: d(-log p_y)/dx = sum_i (p_i - [i=y]) (-n) (x - w_i) / d_i^2.
    """
    diff = x[:, None, :] - w[None, :, :]
    d = np.sqrt((diff**2).sum(-1))
    logits = -n * np.log(d)
    logits -= logits.max(1, keepdims=True)
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    loss = -np.log(p[np.arange(len(t)), t]).mean()
    g = p.copy()
    g[np.arange(len(t)), t] -= 1
    g /= len(t)
    coef = g * (-n) / d**2
    gx = (coef[:, :, None] * diff).sum(1)
    gw = -(coef[:, :, None] * diff).sum(0)
    return loss, p, gx, gw


def test_contract():
    from overtone_harmonic import plugin

    assert [c.name for c in check_plugin(plugin)] == ["harmonic"]


@pytest.mark.parametrize("chunk", [None, 4])
def test_forward_and_gradient_match_numpy(chunk):
    torch.manual_seed(0)
    loss_fn = make(d_in=6, n_classes=9, n=3.5, chunk_size=chunk).double()
    x = torch.randn(11, 6, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, 9, (11,))
    loss = loss_fn(x, t)
    loss.backward()
    ref, p, gx, gw = numpy_harmonic(x.detach().numpy(), loss_fn.weight.detach().numpy(), t.numpy(), 3.5)
    np.testing.assert_allclose(loss.item(), ref, rtol=1e-12)
    np.testing.assert_allclose(torch.softmax(loss_fn.scores(x), -1).detach().numpy(), p, rtol=1e-10)
    np.testing.assert_allclose(x.grad.numpy(), gx, rtol=1e-9, atol=1e-13)
    np.testing.assert_allclose(loss_fn.weight.grad.numpy(), gw, rtol=1e-9, atol=1e-13)


def test_gradcheck_chunked():
    from overtone_harmonic.loss import chunked_harmonic_loss

    torch.manual_seed(1)
    x = torch.randn(7, 3, dtype=torch.float64, requires_grad=True)
    w = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0, 4, -100, 2, 2, 1, 3])
    assert torch.autograd.gradcheck(lambda x, w: chunked_harmonic_loss(x, w, t, 2.5, 1e-12, 3), (x, w))


def test_chunked_equals_unchunked_on_sequences():
    torch.manual_seed(2)
    full = make(d_in=8, n_classes=50, n=4.0)
    chunked = make(d_in=8, n_classes=50, n=4.0, chunk_size=7)
    chunked.weight = full.weight
    x1 = torch.randn(3, 10, 8, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_()
    t = torch.randint(0, 50, (3, 10))
    t[1, 3] = -100
    a, b = full(x1, t), chunked(x2, t)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    a.backward()
    g_w_full = full.weight.grad.clone()
    full.weight.grad = None
    b.backward()
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(full.weight.grad, g_w_full, rtol=1e-4, atol=1e-6)


def test_probabilities_are_scale_invariant():
    """Scaling x and every w_i by c scales every d_i by c; p_i = d_i^-n / sum d_j^-n is unchanged."""
    torch.manual_seed(3)
    loss_fn = make(d_in=5, n_classes=6, n=3.0).double()
    x = torch.randn(4, 5, dtype=torch.float64)
    p = torch.softmax(loss_fn.scores(x), -1)
    with torch.no_grad():
        loss_fn.weight.mul_(17.0)
    torch.testing.assert_close(torch.softmax(loss_fn.scores(17.0 * x), -1), p, rtol=1e-12, atol=1e-14)


def test_loss_tends_to_zero_as_x_approaches_its_centre_and_no_nan_at_it():
    torch.manual_seed(4)
    loss_fn = make(d_in=4, n_classes=5, n=2.0).double()
    w = loss_fn.weight.detach()
    target = torch.tensor([2])
    losses = [loss_fn(w[2:3] + r * torch.ones(1, 4, dtype=torch.float64), target).item() for r in (1e-1, 1e-3, 1e-6)]
    assert losses[0] > losses[1] > losses[2] and losses[2] < 1e-10
    x = w[2:3].clone().requires_grad_()
    loss = loss_fn(x, target)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all() and torch.isfinite(loss_fn.weight.grad).all()
    chunked = make(d_in=4, n_classes=5, n=2.0, chunk_size=1).double()
    chunked.weight = loss_fn.weight
    assert torch.isfinite(chunked(w[2:3].clone().requires_grad_(), target))


def test_exponent_conventions_and_default():
    assert make(d_in=16, n_classes=3).n == pytest.approx(2 * math.sqrt(16))
    assert make(d_in=16, n_classes=3, n=28, convention="squared").n == 56
    with pytest.raises(ConfigError, match="n = -1 must be positive"):
        make(d_in=4, n_classes=3, n=-1)


def test_matches_reference_code_formulation():
    """The reference normalises d^2 by its row minimum and raises it to -n_ref; the same probabilities."""
    torch.manual_seed(5)
    loss_fn = make(d_in=6, n_classes=8, n=3.0, convention="squared").double()
    x = torch.randn(5, 6, dtype=torch.float64)
    d2 = ((x[:, None] - loss_fn.weight[None]) ** 2).sum(-1).detach()
    ratio = (d2 / d2.min(1, keepdim=True).values) ** -3.0
    reference = ratio / ratio.sum(1, keepdim=True)
    torch.testing.assert_close(torch.softmax(loss_fn.scores(x), -1), reference, rtol=1e-10, atol=1e-13)


def test_trains_with_the_engine(tmp_path):
    from overtone.config import dump_toml
    from overtone.io import open_dataset
    from overtone.runs import run_experiment

    config = {
        "run": {"name": "h", "seed": 0},
        "task": {"name": "gaussian-mixture", "n_classes": 4, "dim": 8, "n_samples": 400, "separation": 8.0},
        "model": {"name": "mlp", "width": 32},
        "loss": {"name": "harmonic"},
        "optimizer": {"name": "adamw", "lr": 0.01},
        "train": {"steps": 60, "batch_size": 64, "eval_every": 20, "threads": 1},
    }
    (tmp_path / "h.toml").write_text(dump_toml(config))
    run_dir = run_experiment(tmp_path / "h.toml", out=tmp_path, registry=registry())
    with open_dataset(run_dir / "metrics.nc") as m:
        assert float(m["eval_acc"].dropna("step")[-1]) > 0.95  # well-separated classes: near-perfect


def test_listing_plugins_does_not_import_torch():
    import subprocess
    import sys

    code = "import overtone, sys; overtone.registry(); assert 'torch' not in sys.modules, 'torch imported'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
