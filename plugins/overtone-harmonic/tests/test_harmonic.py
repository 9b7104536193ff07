"""The harmonic loss against a float64 NumPy reference, gradcheck, chunked = unchunked, and the
paper's properties (scale invariance, loss -> 0 as x -> w_y, no NaN at x = w_i)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from harmonic_reference import numpy_harmonic
from overtone import ConfigError
from overtone.registry import registry
from overtone.testing import check_plugin
from overtone_harmonic import chunked_harmonic_loss, harmonic_logits


def make(**params):
    return registry().get("loss", "harmonic").create(**params)


def test_contract():
    from overtone_harmonic import plugin

    assert [c.name for c in check_plugin(plugin)] == ["harmonic"]


@pytest.mark.parametrize("chunk", [None, 4, 1000])
def test_forward_and_gradient_match_numpy(chunk):
    torch.manual_seed(0)
    loss_fn = make(d_in=6, n_classes=9, n=3.5, chunk_size=chunk).double()
    x = torch.randn(11, 6, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, 9, (11,))
    t[5] = -100
    loss = loss_fn(x, t)
    loss.backward()
    ref, p, gx, gw = numpy_harmonic(x.detach().numpy(), loss_fn.weight.detach().numpy(), t.numpy(), 3.5)
    np.testing.assert_allclose(loss.item(), ref, rtol=1e-12)
    probs = torch.softmax(loss_fn.scores(x), -1).detach().numpy()[t.numpy() != -100]
    np.testing.assert_allclose(probs, p, rtol=1e-10)
    np.testing.assert_allclose(x.grad.numpy(), gx, rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(loss_fn.weight.grad.numpy(), gw, rtol=1e-9, atol=1e-14)


def test_float32_chunked_matches_float64_numpy_at_gpt2_like_exponent():
    """n = 1536 on d (the reference GPT-2's 768 on d^2): probabilities of far classes underflow,
    but the log-space loss and its gradients stay accurate in float32."""
    rng = np.random.default_rng(1)
    w = rng.normal(size=(300, 32))
    t = rng.integers(0, 300, 24)
    x = rng.normal(size=(24, 32))
    x[:12] = w[t[:12]] + 0.3 * x[:12]  # half the rows sit near their own centre
    ref, _, gx, gw = numpy_harmonic(x, w, t, 1536.0)
    xt = torch.tensor(x, dtype=torch.float32, requires_grad=True)
    wt = torch.tensor(w, dtype=torch.float32, requires_grad=True)
    loss = chunked_harmonic_loss(xt, wt, torch.tensor(t), 1536.0, chunk_size=5)
    loss.backward()
    assert math.isfinite(ref) and ref > 10  # the other half are far from their centres
    np.testing.assert_allclose(loss.item(), ref, rtol=2e-5)
    scale = np.abs(gx).max()
    np.testing.assert_allclose(xt.grad.numpy(), gx, rtol=0, atol=1e-4 * scale)
    np.testing.assert_allclose(wt.grad.numpy(), gw, rtol=0, atol=1e-4 * np.abs(gw).max())


def test_gradcheck_chunked_and_unchunked():
    torch.manual_seed(1)
    x = torch.randn(7, 3, dtype=torch.float64, requires_grad=True)
    w = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0, 4, -100, 2, 2, 1, 3])
    assert torch.autograd.gradcheck(lambda x, w: chunked_harmonic_loss(x, w, t, 2.5, chunk_size=3), (x, w))
    # an outer function (incoming gradient != 1) and a chunk larger than the batch
    assert torch.autograd.gradcheck(lambda x, w: 3 * chunked_harmonic_loss(x, w, t, 2.5, chunk_size=64) ** 2, (x, w))
    assert torch.autograd.gradcheck(
        lambda x, w: F.cross_entropy(harmonic_logits(x, w, 2.5), t, ignore_index=-100), (x, w))


@pytest.mark.parametrize("n", [1.0, 8.0, 55.4, 1536.0])
def test_chunked_agrees_with_the_reference_path_in_float64_for_any_exponent(n):
    """The chunked path (one-hot folded into Q, three products per chunk) against plain autograd
    over the full logits and the NumPy definition, float64, to 1e-10, from a flat n = 1 to the
    reference GPT-2's n = 1536 on d; rows near their centre, an ignored row, a short last chunk."""
    torch.manual_seed(11)
    w = torch.randn(40, 16, dtype=torch.float64)
    t = torch.randint(0, 40, (13,))
    x = torch.randn(13, 16, dtype=torch.float64)
    x[:5] = w[t[:5]] + 0.2 * x[:5]
    t[7] = -100
    results = []
    for chunk in (None, 4):
        loss_fn = make(d_in=16, n_classes=40, n=n, chunk_size=chunk).double()
        loss_fn.weight.data.copy_(w)
        xi = x.clone().requires_grad_()
        loss = loss_fn(xi, t)
        loss.backward()
        results.append((loss.detach(), xi.grad, loss_fn.weight.grad))
    ref = numpy_harmonic(x.numpy(), w.numpy(), t.numpy(), n)
    for got in results:
        np.testing.assert_allclose(got[0].item(), ref[0], rtol=1e-10)
        for g, r in zip(got[1:], ref[2:]):
            np.testing.assert_allclose(g.numpy(), r, rtol=0, atol=1e-10 * np.abs(r).max())
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10 * float(b.abs().max()))


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
    torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
    a.backward()
    g_w_full = full.weight.grad.clone()
    full.weight.grad = None
    b.backward()
    torch.testing.assert_close(x2.grad, x1.grad, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(full.weight.grad, g_w_full, rtol=1e-5, atol=1e-7)
    assert torch.count_nonzero(x2.grad[1, 3]) == 0  # the ignored position gets no gradient


def test_no_grad_forward_and_partial_gradients():
    torch.manual_seed(6)
    loss_fn = make(d_in=5, n_classes=7, n=3.0, chunk_size=3)
    x = torch.randn(10, 5, requires_grad=True)
    t = torch.randint(0, 7, (10,))
    with torch.no_grad():
        evaluated = loss_fn(x, t)
    assert not evaluated.requires_grad
    loss_fn.weight.requires_grad_(False)  # only x needs a gradient
    loss = loss_fn(x, t)
    torch.testing.assert_close(loss, evaluated)
    loss.backward()
    expected = torch.autograd.grad(F.cross_entropy(harmonic_logits(x, loss_fn.weight, 3.0), t), x)[0]
    torch.testing.assert_close(x.grad, expected, rtol=1e-5, atol=1e-7)
    assert loss_fn.weight.grad is None


def test_half_precision_features_are_reduced_in_float32():
    torch.manual_seed(7)
    loss_fn = make(d_in=16, n_classes=20, chunk_size=8)
    x = torch.randn(12, 16).to(torch.bfloat16).requires_grad_()
    t = torch.randint(0, 20, (12,))
    loss = loss_fn(x, t)
    loss.backward()
    expected = F.cross_entropy(harmonic_logits(x.detach().float(), loss_fn.weight.detach(), loss_fn.n), t)
    assert loss.dtype == torch.float32 and x.grad.dtype == torch.bfloat16
    torch.testing.assert_close(loss, expected, rtol=1e-6, atol=1e-6)


def test_probabilities_are_scale_invariant():
    """Scaling x and every w_i by c scales every d_i by c; p_i = d_i^-n / sum d_j^-n is unchanged."""
    torch.manual_seed(3)
    loss_fn = make(d_in=5, n_classes=6, n=3.0).double()
    x = torch.randn(4, 5, dtype=torch.float64)
    t = torch.randint(0, 6, (4,))
    p, loss = torch.softmax(loss_fn.scores(x), -1), loss_fn(x, t)
    with torch.no_grad():
        loss_fn.weight.mul_(17.0)
    torch.testing.assert_close(torch.softmax(loss_fn.scores(17.0 * x), -1), p, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(loss_fn(17.0 * x, t), loss, rtol=1e-12, atol=0)


@pytest.mark.parametrize("chunk", [None, 1])
def test_loss_tends_to_zero_as_x_approaches_its_centre_and_no_nan_at_it(chunk):
    torch.manual_seed(4)
    loss_fn = make(d_in=4, n_classes=5, n=2.0, chunk_size=chunk).double()
    w = loss_fn.weight.detach()
    target = torch.tensor([2])
    losses = [loss_fn(w[2:3] + r * torch.ones(1, 4, dtype=torch.float64), target).item() for r in (1e-1, 1e-3, 1e-6)]
    assert losses[0] > losses[1] > losses[2] and losses[2] < 1e-10
    for t in (2, 0):  # x sits on its own centre, or on another class's centre
        x = w[2:3].clone().requires_grad_()
        loss_fn.weight.grad = None
        loss = loss_fn(x, torch.tensor([t]))
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(x.grad).all() and torch.isfinite(loss_fn.weight.grad).all()
        if t == 0:
            assert loss.item() > 20  # confidently wrong, but finite


def test_exponent_conventions_and_default():
    assert make(d_in=16, n_classes=3).n == pytest.approx(2 * math.sqrt(16))
    assert make(d_in=16, n_classes=3, n=28, convention="squared").n == 56
    assert make(d_in=16, n_classes=3, n=28).n == 28
    with pytest.raises(ConfigError, match=r"n = -1 must be above 0.0; allowed: 0.0 < n$"):
        make(d_in=4, n_classes=3, n=-1)
    with pytest.raises(ConfigError, match="convention"):
        make(d_in=4, n_classes=3, convention="paper")
    with pytest.raises(ConfigError, match="chunk_size = 0"):
        make(d_in=4, n_classes=3, chunk_size=0)


def test_matches_reference_code_formulation():
    """The reference normalises d^2 by its row minimum and raises it to -n_ref: the same p."""
    torch.manual_seed(5)
    loss_fn = make(d_in=6, n_classes=8, n=3.0, convention="squared").double()
    x = torch.randn(5, 6, dtype=torch.float64)
    d2 = ((x[:, None] - loss_fn.weight[None]) ** 2).sum(-1).detach()
    ratio = (d2 / d2.min(1, keepdim=True).values) ** -3.0
    reference = ratio / ratio.sum(1, keepdim=True)
    torch.testing.assert_close(torch.softmax(loss_fn.scores(x), -1), reference, rtol=1e-10, atol=1e-13)


def test_trains_an_mlp_with_the_engine(tmp_path):
    from overtone.config import dump_toml
    from overtone.io import open_dataset
    from overtone.runs import run_experiment

    config = {
        "run": {"name": "h", "seed": 0},
        "task": {"name": "gaussian-mixture", "n_classes": 4, "dim": 8, "n_samples": 400, "separation": 8.0},
        "model": {"name": "mlp", "width": 32},
        "loss": {"name": "harmonic", "chunk_size": 50},
        "optimizer": {"name": "adamw", "lr": 0.01},
        "train": {"steps": 60, "batch_size": 64, "eval_every": 20, "threads": 1},
    }
    (tmp_path / "h.toml").write_text(dump_toml(config))
    run_dir = run_experiment(tmp_path / "h.toml", out=tmp_path, registry=registry())
    with open_dataset(run_dir / "metrics.nc") as m:
        assert float(m["eval_acc"].dropna("step")[-1]) > 0.95  # well-separated classes: near-perfect


def test_is_a_tied_transformer_unembedding(tmp_path):
    """As the paper's GPT-2: the token embedding is the harmonic head; the chunked loss trains it."""
    from overtone_torch.build import TrainNet, create_model_and_loss, create_task

    config = {
        "task": {"name": "char-text", "context": 16},
        "model": {"name": "transformer", "n_layer": 1, "n_head": 2, "d_model": 16, "tie_weights": True},
        "loss": {"name": "harmonic", "chunk_size": 20},
        "train": {"features": 0},
    }
    task = create_task(config, registry(), seed=0)
    model, loss = create_model_and_loss(config, registry(), task)
    assert loss.weight is model.token_embedding.weight
    net = TrainNet(model, loss)
    optimizer = torch.optim.AdamW(net.parameters(), lr=3e-3)
    torch.manual_seed(0)
    tokens = torch.randint(0, task.n_classes, (8, 17))
    x, y = tokens[:, :-1], tokens[:, 1:]
    first = net(x, y).item()
    for _ in range(30):
        optimizer.zero_grad()
        net(x, y).backward()
        optimizer.step()
    assert net(x, y).item() < first - 0.5  # a fixed batch is memorised
    assert loss.scores(model(x)).shape == (8, 16, task.n_classes)


@pytest.mark.parametrize("eps_mode", ["floor", "add"])
def test_member_forward_matches_forward_with_each_members_exponent(eps_mode):
    """HarmonicLoss.member_forward under vmap, ``n`` a tensor per member, against each member's own
    forward (float64, ignored targets): the harmonic pack of ``overtone sweep --vectorize``. Inputs
    are small so that the reference's added eps (``eps_mode = "add"``) changes the result."""
    import torch
    from overtone_harmonic.loss import HarmonicLoss

    torch.manual_seed(4)
    members = [HarmonicLoss(d_in=6, n_classes=5, n=n, eps_mode=eps_mode).double() for n in (2.0, 7.5, 30.0)]
    x = 0.01 * torch.randn(3, 12, 6, dtype=torch.float64)
    y = torch.randint(0, 5, (3, 12))
    y[1, [0, 5]] = -100
    params = {"weight": torch.stack([m.weight for m in members])}
    values = {"n": torch.tensor([m.member_values()["n"] for m in members], dtype=torch.float64)}
    got = torch.func.vmap(lambda p, a, b, v: members[0].member_forward(p, a, b, v))(params, x, y, values)
    ref = torch.stack([m(a, b) for m, a, b in zip(members, x, y)])
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-12)
    assert len(set(ref.tolist())) == 3
