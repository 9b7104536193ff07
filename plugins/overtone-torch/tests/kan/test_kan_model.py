"""The ``kan`` model through the registry: the factory contract, token inputs, grid extension."""

import pytest
import torch
from overtone import ConfigError

VECTOR = {"kind": "vector", "dim": 3, "output": "pooled"}
TOKENS = {"kind": "tokens", "vocab_size": 11, "seq_len": 2, "output": "pooled"}


def create(registry, **params):
    return registry.get("model", "kan").create(**params)


@pytest.mark.parametrize(("d_out", "width", "depth", "features"), [(None, 8, 1, 8), (5, 8, 1, 5), (8, 8, 2, 8),
                                                                  (None, 6, 0, 6), (1, 6, 0, 1)])
def test_feature_width_follows_d_out_or_width(registry, d_out, width, depth, features):
    model = create(registry, input_spec=VECTOR, d_out=d_out, width=width, depth=depth)
    assert isinstance(model.d_features, int) and model.d_features == features
    assert model(torch.rand(4, 3) * 2 - 1).shape == (4, features)
    assert len(model.layers) == max(depth + (d_out is not None and d_out != width), 1)


def test_token_inputs_are_embedded_on_the_grid(registry):
    model = create(registry, input_spec=TOKENS, d_out=None, width=4, embed_dim=3, grid_range=[-2, 2])
    assert model.token_embedding.weight.shape == (11, 3)
    assert model.token_embedding.weight.abs().max() <= 2
    assert model.layers[0].d_in == 6
    assert model(torch.randint(0, 11, (5, 2))).shape == (5, 4)


def test_chebyshev_model_runs_and_trains_its_coefficients(registry):
    model = create(registry, input_spec=VECTOR, d_out=2, width=4, basis="chebyshev", grid_size=6)
    model(torch.rand(8, 3)).sum().backward()
    assert model.layers[0].coef.shape == (3, 4, 7)
    assert model.layers[0].coef.grad.abs().sum() > 0


@pytest.mark.parametrize(("params", "message"), [
    ({"basis": "fourier"}, "basis = 'fourier' is not allowed; allowed values: 'bspline', 'chebyshev'"),
    ({"grid_schedule": [[10, 4]]}, "grid sizes > grid_size = 5"),
    ({"grid_schedule": [[10, 10], [5, 20]]}, "strictly increasing"),
    ({"grid_schedule": [10, 20]}, "grid_schedule\\[0\\] = 10 is a single int; expected a list of 2 int"),
    ({"grid_range": [1.0, -1.0]}, "low < high"),
    ({"width": 0}, "width = 0 is below the minimum 1; allowed: 1 <= width"),
])
def test_bad_parameters_are_refused_in_one_line(registry, params, message):
    with pytest.raises(ConfigError, match=message) as info:
        create(registry, input_spec=VECTOR, d_out=None, **params)
    assert "\n" not in str(info.value)


def test_sequence_outputs_are_refused(registry):
    with pytest.raises(ConfigError, match="cannot give output 'sequence'"):
        create(registry, input_spec={**TOKENS, "output": "sequence"}, d_out=None)


def test_builds_on_the_meta_device(registry):
    with torch.device("meta"):
        model = create(registry, input_spec=VECTOR, d_out=4, width=8)
    assert model.layers[0].coef.device.type == "meta" and model.d_features == 4


def test_on_step_extends_by_schedule_and_the_optimizer_continues(registry):
    torch.manual_seed(0)
    model = create(registry, input_spec=VECTOR, d_out=1, width=4, grid_schedule=[[3, 10], [6, 20]])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    x = torch.rand(64, 3) * 2 - 1
    y = torch.sin(3 * x).sum(1, keepdim=True)
    sizes = []
    for step in range(1, 9):
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        before = model(x).detach()
        for p in model.on_step(step):
            optimizer.state.pop(p, None)
        torch.testing.assert_close(model(x).detach(), before, rtol=0, atol=1e-5)  # function kept
        sizes.append(model.grid_size)
    assert sizes == [5, 5, 10, 10, 10, 20, 20, 20]
    assert model.layers[1].coef.shape == (4, 1, 23)
    assert model.on_step(100) == []  # nothing left to do
    assert [model.grid_size_at(s) for s in (0, 2, 3, 5, 6, 99)] == [5, 5, 10, 10, 20, 20]


def test_on_step_catches_up_when_called_late(registry):
    model = create(registry, input_spec=VECTOR, d_out=None, width=4, grid_schedule=[[3, 10], [6, 20]])
    assert len(model.on_step(7)) == 1 and model.grid_size == 20  # one layer, straight to 20


def test_a_checkpoint_after_extension_loads_into_a_fresh_model(registry):
    torch.manual_seed(1)
    trained = create(registry, input_spec=VECTOR, d_out=2, width=4, grid_schedule=[[1, 10]])
    trained.on_step(1)
    fresh = create(registry, input_spec=VECTOR, d_out=2, width=4, grid_schedule=[[1, 10]])
    fresh.load_state_dict(trained.state_dict())
    x = torch.rand(10, 3)
    torch.testing.assert_close(fresh(x), trained(x), rtol=0, atol=0)
    assert fresh.on_step(1) == []  # already extended: not refined twice
