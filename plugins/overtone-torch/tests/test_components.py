"""Components through the registry, checked against independent references."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from overtone import ConfigError
from overtone.testing import check_plugin


def test_contract():
    from overtone_torch import plugin

    names = {c.name for c in check_plugin(plugin)}
    assert {"modular-arithmetic", "digits", "char-text", "gaussian-mixture", "mlp", "transformer",
            "cross-entropy", "mse", "adamw", "adam", "sgd", "torch"} <= names


def numpy_cross_entropy(x, w, b, t):
    """float64 reference: mean over kept rows of logsumexp(z) - z_t, and d/dx, d/dW."""
    z = x @ w.T + b
    z = z - z.max(1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    keep = t != -100
    n = keep.sum()
    loss = -np.log(p[keep, t[keep]]).sum() / n
    g = p.copy()
    g[keep, t[keep]] -= 1
    g[~keep] = 0
    g /= n
    return loss, g @ w, g.T @ x


@pytest.mark.parametrize("chunk", [None, 3, 64])
def test_cross_entropy_matches_numpy(registry, chunk):
    torch.manual_seed(0)
    loss_fn = registry.get("loss", "cross-entropy").create(d_in=5, n_classes=7, chunk_size=chunk).double()
    with torch.no_grad():
        loss_fn.bias.normal_()
    x = torch.randn(4, 3, 5, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, 7, (4, 3))
    t[0, 1] = -100
    loss = loss_fn(x, t)
    loss.backward()
    ref, gx, gw = numpy_cross_entropy(x.detach().reshape(-1, 5).numpy(), loss_fn.weight.detach().numpy(),
                                      loss_fn.bias.detach().numpy(), t.reshape(-1).numpy())
    np.testing.assert_allclose(loss.item(), ref, rtol=1e-12)
    np.testing.assert_allclose(x.grad.reshape(-1, 5).numpy(), gx, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(loss_fn.weight.grad.numpy(), gw, rtol=1e-10, atol=1e-14)


def test_chunked_gradcheck_and_equality():
    from overtone_torch.losses.cross_entropy import chunked_linear_cross_entropy

    torch.manual_seed(1)
    x = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(9, 4, dtype=torch.float64, requires_grad=True)
    b = torch.randn(9, dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0, 8, -100, 3, 3, 1])
    assert torch.autograd.gradcheck(lambda x, w, b: chunked_linear_cross_entropy(x, w, b, t, 4), (x, w, b))
    full = F.cross_entropy(x @ w.T + b, t, ignore_index=-100, reduction="sum")
    torch.testing.assert_close(chunked_linear_cross_entropy(x, w, b, t, 4), full, rtol=1e-12, atol=1e-12)


def test_mse_loss(registry):
    loss_fn = registry.get("loss", "mse").create(d_in=3, n_classes=4)
    x, t = torch.randn(5, 3), torch.tensor([0, 1, 2, 3, 0])
    expected = ((loss_fn.scores(x) - F.one_hot(t, 4).float()) ** 2).mean()
    torch.testing.assert_close(loss_fn(x, t), expected)


@pytest.mark.parametrize("op", ["+", "-", "*", "/"])
def test_modular_labels(registry, op):
    task = registry.get("task", "modular-arithmetic").create(seed=3, p=11, op=op, train_fraction=0.5)
    x = torch.cat([task.x["train"], task.x["eval"]])
    y = torch.cat([task.y["train"], task.y["eval"]])
    for (a, b), c in zip(x.tolist(), y.tolist()):
        if op == "/":
            assert (c * b) % 11 == a % 11
        else:
            assert c == {"+": a + b, "-": a - b, "*": a * b}[op] % 11
    assert len(y) == (110 if op == "/" else 121)
    assert task.train_size == round(0.5 * len(y))
    again = registry.get("task", "modular-arithmetic").create(seed=3, p=11, op=op, train_fraction=0.5)
    assert torch.equal(again.x["train"], task.x["train"])


def test_task_errors(registry):
    with pytest.raises(ConfigError, match="p = 12 must be a prime"):
        registry.get("task", "modular-arithmetic").create(seed=0, p=12)
    with pytest.raises(ConfigError, match="train_fraction = 1.2 must be strictly between 0 and 1"):
        registry.get("task", "digits").create(seed=0, train_fraction=1.2)
    with pytest.raises(ConfigError, match="not found"):
        registry.get("task", "char-text").create(seed=0, path="/no/such.txt")


def test_digits_and_mixture(registry):
    digits = registry.get("task", "digits").create(seed=0)
    assert digits.train_size + len(digits.y["eval"]) == 1797 and digits.input_spec["dim"] == 64
    assert float(digits.x["train"].max()) == 1.0
    mix = registry.get("task", "gaussian-mixture").create(seed=0, n_classes=3, dim=4, n_samples=300)
    assert set(mix.y["train"].tolist()) == {0, 1, 2}


def test_char_text_windows(registry, tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("abcdefghij" * 50)
    task = registry.get("task", "char-text").create(seed=0, path=str(text), context=8)
    x, y = task.sample_batch("train", 4, torch.Generator().manual_seed(0))
    assert x.shape == (4, 8) and torch.equal(x[:, 1:], y[:, :-1])
    bundled = registry.get("task", "char-text").create(seed=0)
    assert bundled.describe()["characters"] > 1_000_000


def test_transformer_is_causal(registry):
    spec = {"kind": "tokens", "vocab_size": 20, "seq_len": 10, "output": "sequence"}
    model = registry.get("model", "transformer").create(input_spec=spec, d_out=32, n_layer=2, n_head=4, d_model=32).eval()
    x = torch.randint(0, 20, (2, 10))
    changed = x.clone()
    changed[:, 6] = (x[:, 6] + 1) % 20
    a, b = model(x), model(changed)
    torch.testing.assert_close(a[:, :6], b[:, :6])
    assert not torch.allclose(a[:, 6:], b[:, 6:])


def test_gpt2_small_has_124m_parameters(registry):
    spec = {"kind": "tokens", "vocab_size": 50257, "seq_len": 1024, "output": "sequence"}
    with torch.device("meta"):
        model = registry.get("model", "transformer").create(input_spec=spec, d_out=768, preset="gpt2-small", tie_weights=True)
    # GPT-2 small as published (tied unembedding counted once): 124,439,808
    assert sum(p.numel() for p in model.parameters()) == 124_439_808


def test_mlp_shapes_and_errors(registry):
    spec = {"kind": "tokens", "vocab_size": 13, "seq_len": 2, "output": "pooled"}
    model = registry.get("model", "mlp").create(input_spec=spec, d_out=16, width=8, depth=2)
    assert model(torch.randint(0, 13, (5, 2))).shape == (5, 16)
    with pytest.raises(ConfigError, match="use name = 'transformer'"):
        registry.get("model", "mlp").create(input_spec={**spec, "output": "sequence"}, d_out=4)


@pytest.mark.parametrize("name", ["adamw", "adam", "sgd"])
def test_optimizers_step(registry, name):
    w = torch.nn.Parameter(torch.ones(3))
    opt = registry.get("optimizer", name).create([w], lr=0.1, betas=[0.9, 0.99]) if name != "sgd" else \
        registry.get("optimizer", name).create([w], lr=0.1, momentum=0.9)
    (w ** 2).sum().backward()
    opt.step()
    assert (w.detach() < 1).all()
    assert opt.defaults.get("foreach") is True
