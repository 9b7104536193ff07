"""Models through the registry: shapes, an independent forward pass, causality, the GPT-2 shape."""

from __future__ import annotations

import math

import overtone
import pytest
import torch
from overtone import ConfigError

TOKENS = {"kind": "tokens", "vocab_size": 13, "seq_len": 2, "output": "pooled"}
SEQUENCE = {"kind": "tokens", "vocab_size": 20, "seq_len": 10, "output": "sequence"}
VECTOR = {"kind": "vector", "dim": 64, "output": "pooled"}


def make(name: str, **params):
    return overtone.registry().get("model", name).create(**params)


def test_mlp_on_tokens_is_embed_concat_hidden():
    torch.manual_seed(0)
    model = make("mlp", input_spec=TOKENS, d_out=8, width=8, depth=1, embed_dim=3).double()
    assert isinstance(model.token_embedding, torch.nn.Embedding) and model.token_embedding.weight.shape == (13, 3)
    x = torch.randint(0, 13, (5, 2))
    e = model.token_embedding.weight
    hidden = model.layers[0]
    expected = torch.relu(torch.cat([e[x[:, 0]], e[x[:, 1]]], 1) @ hidden.weight.T + hidden.bias)
    torch.testing.assert_close(model(x), expected, rtol=1e-14, atol=1e-14)  # features = hidden activations


def test_mlp_vector_depths_and_projection():
    x = torch.rand(7, 64)
    assert make("mlp", input_spec=VECTOR, d_out=32, width=32, depth=3)(x).shape == (7, 32)
    projected = make("mlp", input_spec=VECTOR, d_out=5, width=32, depth=2, activation="tanh")
    assert isinstance(projected.layers[-1], torch.nn.Linear) and projected(x).shape == (7, 5)
    linear = make("mlp", input_spec=VECTOR, d_out=10, depth=0)
    assert [type(m) for m in linear.layers] == [torch.nn.Linear] and linear.token_embedding is None


@pytest.mark.parametrize("activation", ["relu", "gelu", "silu", "tanh"])
def test_mlp_activations(activation):
    model = make("mlp", input_spec=VECTOR, d_out=16, width=16, activation=activation)
    reference = {"relu": torch.relu, "gelu": torch.nn.functional.gelu, "silu": torch.nn.functional.silu,
                 "tanh": torch.tanh}[activation]
    x = torch.randn(4, 64)
    torch.testing.assert_close(model(x), reference(model.layers[0](x)))


def test_mlp_init_scale():
    torch.manual_seed(0)
    model = make("mlp", input_spec={**TOKENS, "vocab_size": 97}, d_out=512, width=512, init_scale=0.5, embed_dim=256)
    w = model.layers[0].weight
    assert w.std().item() == pytest.approx(0.5 / math.sqrt(512), rel=0.02)  # N(0, s^2 / fan_in), fan_in = 2 * 256
    assert model.token_embedding.weight.std().item() == pytest.approx(0.5, rel=0.05)
    assert model.layers[0].bias.abs().max().item() == 0


def test_transformer_is_causal():
    model = make("transformer", input_spec=SEQUENCE, d_out=32, n_layer=2, n_head=4, d_model=32).eval()
    x = torch.randint(0, 20, (2, 10))
    changed = x.clone()
    changed[:, 6] = (x[:, 6] + 1) % 20
    a, b = model(x), model(changed)
    assert a.shape == (2, 10, 32)
    torch.testing.assert_close(a[:, :6], b[:, :6], rtol=0, atol=0)
    assert not torch.allclose(a[:, 6:], b[:, 6:])


def test_transformer_pooled_is_last_position():
    torch.manual_seed(0)
    seq = make("transformer", input_spec=SEQUENCE, d_out=16, n_head=2, d_model=16).eval()
    pooled = make("transformer", input_spec={**SEQUENCE, "output": "pooled"}, d_out=16, n_head=2, d_model=16).eval()
    pooled.load_state_dict(seq.state_dict())
    x = torch.randint(0, 20, (3, 10))
    torch.testing.assert_close(pooled(x), seq(x)[:, -1])
    assert isinstance(pooled.token_embedding, torch.nn.Embedding)


def reference_block(block, x):
    """GPT-2 block written out in float64: pre-LN, explicit masked softmax attention, tanh-GELU MLP."""
    b, t, d = x.shape
    h = block.attn.n_head
    ln = torch.nn.functional.layer_norm
    y = ln(x, (d,), block.ln_1.weight, block.ln_1.bias)
    q, k, v = (y @ block.attn.qkv.weight.T + block.attn.qkv.bias).split(d, dim=2)
    q, k, v = (z.reshape(b, t, h, d // h).permute(0, 2, 1, 3) for z in (q, k, v))
    scores = q @ k.transpose(-1, -2) / math.sqrt(d // h)
    scores = scores.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf"))
    attn = (scores.softmax(-1) @ v).permute(0, 2, 1, 3).reshape(b, t, d)
    x = x + attn @ block.attn.proj.weight.T + block.attn.proj.bias
    y = ln(x, (d,), block.ln_2.weight, block.ln_2.bias)
    fc, out = block.mlp[0], block.mlp[2]
    u = y @ fc.weight.T + fc.bias
    u = 0.5 * u * (1 + torch.tanh(math.sqrt(2 / math.pi) * (u + 0.044715 * u**3)))
    return x + u @ out.weight.T + out.bias


def test_transformer_matches_written_out_reference():
    torch.manual_seed(1)
    model = make("transformer", input_spec=SEQUENCE, d_out=24, n_layer=2, n_head=3, d_model=24).double().eval()
    with torch.no_grad():
        for p in model.parameters():  # move away from the init so LayerNorm gains and biases matter
            p.add_(0.1 * torch.randn_like(p))
        x = torch.randint(0, 20, (2, 10))
        h = model.token_embedding.weight[x] + model.position_embedding.weight[:10]
        for block in model.blocks:
            h = reference_block(block, h)
        h = torch.nn.functional.layer_norm(h, (24,), model.ln_f.weight, model.ln_f.bias)
        torch.testing.assert_close(model(x), h, rtol=1e-12, atol=1e-12)


def test_gpt2_small_has_124m_parameters():
    spec = {"kind": "tokens", "vocab_size": 50257, "seq_len": 1024, "output": "sequence"}
    with torch.device("meta"):
        model = make("transformer", input_spec=spec, d_out=768, preset="gpt2-small", tie_weights=True)
        head = overtone.registry().get("loss", "cross-entropy").create(d_in=768, n_classes=50257, bias=False)
    assert (model.n_layer, model.n_head, model.d_model, model.context) == (12, 12, 768, 1024)
    assert model.tie_weights is True and head.weight.shape == model.token_embedding.weight.shape
    # GPT-2 small as published, the tied unembedding counted once: 124,439,808
    assert sum(p.numel() for p in model.parameters()) == 124_439_808


def test_dropout_only_in_training():
    model = make("transformer", input_spec=SEQUENCE, d_out=16, n_head=2, d_model=16, dropout=0.5)
    x = torch.randint(0, 20, (2, 10))
    model.eval()
    torch.testing.assert_close(model(x), model(x))
    model.train()
    assert not torch.equal(model(x), model(x))


@pytest.mark.parametrize(("name", "params", "message"), [
    ("mlp", {"input_spec": SEQUENCE, "d_out": 4}, "use name = 'transformer'"),
    ("mlp", {"input_spec": {"kind": "image"}, "d_out": 4}, "cannot take inputs of kind 'image'"),
    ("mlp", {"input_spec": VECTOR, "d_out": 4, "activation": "elu"}, "activation = 'elu'"),
    ("mlp", {"input_spec": VECTOR, "d_out": 4, "depth": -1}, "depth = -1 is below the minimum 0; allowed: 0 <= depth"),
    ("mlp", {"input_spec": {"kind": "vector"}, "d_out": 4}, "lacks positive integer dim"),
    ("transformer", {"input_spec": VECTOR, "d_out": 128}, "use name = 'mlp'"),
    ("transformer", {"input_spec": SEQUENCE, "d_out": 30, "d_model": 30, "n_head": 4}, "must be divisible"),
    ("transformer", {"input_spec": SEQUENCE, "d_out": 64}, "got d_out = 64"),
    ("transformer", {"input_spec": SEQUENCE, "d_out": 128, "context": 4}, "context = 4 is shorter"),
    ("transformer", {"input_spec": SEQUENCE, "d_out": 128, "preset": "gpt5"}, "preset = 'gpt5'"),
])
def test_bad_model_params(name, params, message):
    with pytest.raises(ConfigError) as info:
        make(name, **params)
    assert message in str(info.value)


def test_mlp_embed_std_and_tied_head():
    """embed_std sets the token embedding's init alone; tie_weights makes the loss head's weight
    the token embedding (the harmonic reference's MLP ties its class centres to the inputs)."""
    from overtone_torch.build import create_model_and_loss

    torch.manual_seed(0)
    spec = {**TOKENS, "vocab_size": 997}
    model = make("mlp", input_spec=spec, d_out=64, width=512, embed_dim=64, init_scale=0.5, embed_std=0.25)
    assert model.token_embedding.weight.std().item() == pytest.approx(0.25, rel=0.03)
    assert model.layers[0].weight.std().item() == pytest.approx(0.5 / math.sqrt(128), rel=0.03)

    class Task:
        input_spec = {"kind": "tokens", "vocab_size": 11, "seq_len": 2, "output": "pooled"}
        n_classes = 11

    config = {"train": {"features": 6}, "model": {"name": "mlp", "width": 20, "embed_dim": 6, "tie_weights": True},
              "loss": {"name": "cross-entropy"}}
    net, loss = create_model_and_loss(config, overtone.registry(), Task())
    assert loss.weight is net.token_embedding.weight
    config["model"]["tie_weights"] = False
    net, loss = create_model_and_loss(config, overtone.registry(), Task())
    assert loss.weight is not net.token_embedding.weight


@pytest.mark.parametrize(("params", "message"), [
    ({"input_spec": VECTOR, "d_out": 4, "tie_weights": True}, "tie_weights needs token inputs"),
    ({"input_spec": TOKENS, "d_out": 4, "embed_std": 0.0}, "embed_std = 0.0"),
])
def test_bad_mlp_embedding_params(params, message):
    with pytest.raises(ConfigError, match=message):
        make("mlp", **params)
