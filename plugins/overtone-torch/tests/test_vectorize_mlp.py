"""The hand-written batched step of MLP packs against autograd of each member's own module."""

from __future__ import annotations

import pytest
import torch
from overtone_torch import vectorize_mlp
from overtone_torch.build import TrainNet
from overtone_torch.losses.cross_entropy import CrossEntropyLoss
from overtone_torch.models.mlp import MLP
from overtone_torch.vectorize_mlp import batched_mlp_step

TOKENS = {"kind": "tokens", "vocab_size": 11, "seq_len": 3, "output": "pooled"}
VECTORS = {"kind": "vector", "dim": 7, "output": "pooled"}

#: (input spec, MLP keyword arguments, head bias)
CASES = {
    "tokens-relu-depth1": (TOKENS, {"width": 16, "depth": 1, "embed_dim": 5}, True),
    "tokens-tanh-depth2-final-map": (TOKENS, {"width": 12, "depth": 2, "embed_dim": 4, "d_out": 9,
                                              "activation": "tanh"}, True),
    "vectors-relu-depth3-no-head-bias": (VECTORS, {"width": 10, "depth": 3}, False),
    "vectors-depth0": (VECTORS, {"width": 10, "depth": 0, "d_out": 6}, True),
}


def _pack(spec, kwargs, bias, members, dtype):
    nets = []
    for seed in range(members):
        torch.manual_seed(seed)
        model = MLP(input_spec=spec, **kwargs)
        nets.append(TrainNet(model, CrossEntropyLoss(d_in=model.d_features, n_classes=13, bias=bias)).to(dtype))
    params, _ = torch.func.stack_module_state(nets)
    return nets, {n: p.detach().clone().requires_grad_() for n, p in params.items()}


def _batch(spec, members, batch, dtype):
    generator = torch.Generator().manual_seed(5)
    if spec["kind"] == "tokens":
        x = torch.randint(spec["vocab_size"], (members, batch, spec["seq_len"]), generator=generator)
    else:
        x = torch.randn(members, batch, spec["dim"], generator=generator, dtype=dtype)
    y = torch.randint(13, (members, batch), generator=generator)
    y[1, :3] = -100  # some ignored targets
    y[2] = -100  # a member whose whole batch is ignored
    return x, y


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_each_members_loss_and_gradients_match_autograd_of_its_own_module(case, dtype, monkeypatch):
    """Reference: ``TrainNet.forward`` (F.cross_entropy with the member's label smoothing) and
    ``backward`` per member. float64 to 1e-10, float32 to 1e-5 (relative to the largest entry);
    5 members stepped 2 at a time (a partial last chunk) and all at once."""
    spec, kwargs, bias = CASES[case]
    members, batch = 5, 24
    nets, params = _pack(spec, kwargs, bias, members, dtype)
    smoothing = torch.tensor([0.0, 0.1, 0.3, 0.0, 0.05])
    for net, s in zip(nets, smoothing.tolist()):
        net.loss.label_smoothing = s
    x, y = _batch(spec, members, batch, dtype)
    step = batched_mlp_step(nets, params)
    assert step is not None
    tol = 1e-10 if dtype == torch.float64 else 1e-5
    for chunk in (2, members):
        monkeypatch.setattr(vectorize_mlp, "CHUNK_BYTES", chunk * _per_member_bytes(params, x, step))
        step.key = None  # allocate again, for this chunk size
        losses = step(params, x, y, smoothing)
        assert step.buffers["chunk"] == chunk
        for i, net in enumerate(nets):
            net.zero_grad(set_to_none=True)
            if (y[i] != -100).any():
                reference = net(x[i], y[i])
                reference.backward()
                torch.testing.assert_close(losses[i], reference.detach(), rtol=tol, atol=0.0)
            else:  # no kept target: loss 0 and no gradient (F.cross_entropy would give NaN)
                assert losses[i] == 0
            for name, p in net.named_parameters():
                got = params[name].grad[i]
                expected = torch.zeros_like(p) if p.grad is None else p.grad
                scale = expected.abs().max().clamp_min(1e-12)
                assert (got - expected).abs().max() / scale < tol, (name, i)


def _per_member_bytes(params, x, step):
    """Bytes of one member's activations as :class:`BatchedMLPStep` counts them."""
    batch = x.shape[1]
    widths = [params[layer.weight].shape[1] for layer in step.layers]
    d_in = params[step.layers[0].weight].shape[2]
    n_classes = params[step.head].shape[1]
    return batch * (2 * d_in + 2 * sum(widths) + n_classes) * params[step.head].element_size()


@pytest.mark.parametrize("kwargs", [{"activation": "gelu"}, {"norm": "batch"}, {"tie_weights": True}])
def test_what_the_batched_step_cannot_take_goes_to_vmap(kwargs):
    """GELU, batch norm and a head tied to the embedding: no batched step (the pack uses vmap)."""
    spec = {**TOKENS, "vocab_size": 13}
    extra = {"embed_dim": 16, "d_out": 16} if kwargs.get("tie_weights") else {}
    nets = []
    for _ in range(2):
        model = MLP(input_spec=spec, width=16, depth=1, **{"embed_dim": 4, **extra, **kwargs})
        loss = CrossEntropyLoss(d_in=model.d_features, n_classes=13)
        if kwargs.get("tie_weights"):
            loss.weight = model.token_embedding.weight
        nets.append(TrainNet(model, loss))
    params, _ = torch.func.stack_module_state(nets)
    assert batched_mlp_step(nets, params) is None


@pytest.mark.parametrize("case", list(CASES))
def test_the_batched_evaluation_matches_each_members_own_evaluation(case):
    """``BatchedMLPStep.evaluate`` (rows 7 at a time) against the engine's
    :func:`overtone_torch.evaluation.evaluate` of each member's module on its examples (batches
    of 10): mean loss to 1e-12 relative (float64), the same number of correct predictions."""
    from overtone_torch.evaluation import evaluate

    spec, kwargs, bias = CASES[case]
    members = 4
    nets, params = _pack(spec, kwargs, bias, members, torch.float64)
    smoothing = torch.tensor([0.0, 0.2, 0.0, 0.1])
    for net, s in zip(nets, smoothing.tolist()):
        net.loss.label_smoothing = s
    x, y = _batch(spec, members, 30, torch.float64)
    y[2, 0] = 3  # member 2 keeps one target
    step = batched_mlp_step(nets, params)
    total, correct, count = step.evaluate(params, x, y, smoothing, rows=7)
    for i, net in enumerate(nets):
        batches = [(x[i, k:k + 10], y[i, k:k + 10]) for k in range(0, 30, 10)]
        loss, accuracy = evaluate(net, batches, torch.device("cpu"))
        assert count[i] == (y[i] != -100).sum()
        assert total[i] / count[i] == pytest.approx(loss, rel=1e-12)
        assert correct[i] / count[i] == accuracy
