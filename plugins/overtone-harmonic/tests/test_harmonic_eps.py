"""The two eps conventions of the harmonic loss (``eps_mode``) against a float64 NumPy reference.

``"floor"`` (default): ``d^2 -> max(d^2, eps)``. ``"add"``: ``d^2 -> d^2 + eps``, the reference
code's ``DistLayer`` (KindXiaoming/grow-crystals, eps = 1e-4), which is not scale invariant.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from harmonic_reference import numpy_harmonic
from overtone import ConfigError
from overtone.registry import registry
from overtone_harmonic import chunked_harmonic_loss, harmonic_logits


def make(**params):
    return registry().get("loss", "harmonic").create(**params)


def small_problem(seed=0):
    """Features and centres at a scale where d^2 ~ 1e-4 (eps matters); rows near their centre."""
    rng = np.random.default_rng(seed)
    w = 0.01 * rng.normal(size=(9, 6))
    t = rng.integers(0, 9, 12)
    x = 0.01 * rng.normal(size=(12, 6))
    x[:4] = w[t[:4]] + 1e-4 * rng.normal(size=(4, 6))  # inside the eps scale of their centre
    t[6] = -100
    return x, w, t


@pytest.mark.parametrize("mode", ["floor", "add"])
@pytest.mark.parametrize("chunk", [None, 4, 1000])
def test_both_conventions_match_numpy_in_both_paths(mode, chunk):
    x, w, t = small_problem()
    loss_fn = make(d_in=6, n_classes=9, n=3.0, eps=1e-4, eps_mode=mode, chunk_size=chunk).double()
    loss_fn.weight.data.copy_(torch.tensor(w))
    xt = torch.tensor(x, requires_grad=True)
    loss = loss_fn(xt, torch.tensor(t))
    loss.backward()
    ref, p, gx, gw = numpy_harmonic(x, w, t, 3.0, 1e-4, mode)
    np.testing.assert_allclose(loss.item(), ref, rtol=1e-12)
    probs = torch.softmax(loss_fn.scores(xt), -1).detach().numpy()[t != -100]
    np.testing.assert_allclose(probs, p, rtol=1e-10, atol=1e-300)
    np.testing.assert_allclose(xt.grad.numpy(), gx, rtol=0, atol=1e-10 * np.abs(gx).max())
    np.testing.assert_allclose(loss_fn.weight.grad.numpy(), gw, rtol=0, atol=1e-10 * np.abs(gw).max())


def test_the_conventions_differ_where_eps_matters():
    x, w, t = small_problem()
    floor = numpy_harmonic(x, w, t, 3.0, 1e-4, "floor")[0]
    add = numpy_harmonic(x, w, t, 3.0, 1e-4, "add")[0]
    assert abs(floor - add) > 0.1  # not a no-op at this scale: the test above can tell them apart
    got = {}
    for mode in ("floor", "add"):
        loss_fn = make(d_in=6, n_classes=9, n=3.0, eps=1e-4, eps_mode=mode).double()
        loss_fn.weight.data.copy_(torch.tensor(w))
        got[mode] = loss_fn(torch.tensor(x), torch.tensor(t)).item()
    assert got["floor"] == pytest.approx(floor, rel=1e-12) and got["add"] == pytest.approx(add, rel=1e-12)


def test_add_matches_the_reference_dist_layer():
    """The reference: ``D = |x|^2 + |w|^2 - 2 x.w + eps``, ``(D / min D)^-n_ref``, normalised."""
    torch.manual_seed(5)
    loss_fn = make(d_in=6, n_classes=8, n=1.0, convention="squared", eps_mode="add").double()
    assert loss_fn.eps == 1e-4  # the reference's eps is the default of this mode
    x = 0.05 * torch.randn(5, 6, dtype=torch.float64)
    w = loss_fn.weight.detach()
    dist_sq = (w**2).sum(-1)[None] + (x**2).sum(-1)[:, None] - 2 * x @ w.T + 1e-4
    ratio = (dist_sq / dist_sq.min(1, keepdim=True).values) ** -1.0
    reference = ratio / ratio.sum(1, keepdim=True)
    torch.testing.assert_close(torch.softmax(loss_fn.scores(x), -1), reference, rtol=1e-10, atol=1e-13)


def test_add_is_not_scale_invariant_and_floor_is():
    torch.manual_seed(3)
    x = 0.02 * torch.randn(4, 5, dtype=torch.float64)
    t = torch.randint(0, 6, (4,))
    for mode, invariant in (("floor", True), ("add", False)):
        loss_fn = make(d_in=5, n_classes=6, n=3.0, eps=1e-4 if mode == "add" else 1e-12, eps_mode=mode).double()
        with torch.no_grad():
            loss_fn.weight.mul_(0.1)
        before = loss_fn(x, t).item()
        with torch.no_grad():
            loss_fn.weight.mul_(100.0)
        after = loss_fn(100.0 * x, t).item()
        assert (abs(after - before) < 1e-10 * before) is invariant, (mode, before, after)


@pytest.mark.parametrize("chunk", [None, 1])
def test_add_is_finite_at_a_centre(chunk):
    torch.manual_seed(4)
    loss_fn = make(d_in=4, n_classes=5, n=2.0, chunk_size=chunk, eps_mode="add").double()
    x = loss_fn.weight.detach()[2:3].clone().requires_grad_()
    loss = loss_fn(x, torch.tensor([2]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all() and torch.isfinite(loss_fn.weight.grad).all()


def test_gradcheck_add_mode():
    torch.manual_seed(1)
    x = (0.01 * torch.randn(7, 3, dtype=torch.float64)).requires_grad_()
    w = (0.01 * torch.randn(5, 3, dtype=torch.float64)).requires_grad_()
    t = torch.tensor([0, 4, -100, 2, 2, 1, 3])
    assert torch.autograd.gradcheck(
        lambda x, w: chunked_harmonic_loss(x, w, t, 2.5, eps=1e-4, chunk_size=3, eps_mode="add"), (x, w))
    assert torch.autograd.gradcheck(
        lambda x, w: torch.nn.functional.cross_entropy(harmonic_logits(x, w, 2.5, 1e-4, "add"), t, ignore_index=-100),
        (x, w))


def test_defaults_and_bad_values():
    assert make(d_in=4, n_classes=3).eps == 1e-12
    assert make(d_in=4, n_classes=3, eps_mode="add").eps == 1e-4
    assert make(d_in=4, n_classes=3, eps=1e-6, eps_mode="add").eps == 1e-6
    with pytest.raises(ConfigError, match="eps_mode"):
        make(d_in=4, n_classes=3, eps_mode="clamp")
    with pytest.raises(ConfigError, match="eps = 0"):
        make(d_in=4, n_classes=3, eps=0.0)
    with pytest.raises(ConfigError, match="eps_mode = 'clamp'"):
        chunked_harmonic_loss(torch.zeros(2, 3), torch.ones(4, 3), torch.zeros(2, dtype=torch.long), 2.0,
                              eps_mode="clamp")
