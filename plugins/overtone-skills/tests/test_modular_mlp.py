"""modular-mlp: gated per-task modules, checked against a per-module reference computation."""

from __future__ import annotations

import pytest
from overtone import ConfigError

torch = pytest.importorskip("torch")
from overtone.testing import check_model  # noqa: E402
from overtone_skills.modular_mlp import ModularMLP  # noqa: E402

SPEC = {"kind": "vector", "dim": 7, "output": "pooled"}


def test_passes_the_model_contract():
    check_model(ModularMLP, input_spec=SPEC, d_out=None, params={"modules": 3, "width": 5})
    check_model(ModularMLP, input_spec=SPEC, d_out=15, params={"modules": 3, "width": 5})


def test_forward_equals_separate_gated_mlps():
    torch.manual_seed(0)
    net = ModularMLP(input_spec=SPEC, modules=3, width=4, depth=2, activation="tanh").double()
    x = torch.randn(11, 7, dtype=torch.float64)
    # reference: module k as an ordinary two-layer MLP with nn.functional.linear, times x[:, k]
    blocks = []
    for k in range(3):
        h = torch.tanh(torch.nn.functional.linear(x, net.weights[0][k].T, net.biases[0][k]))
        h = torch.tanh(torch.nn.functional.linear(h, net.weights[1][k].T, net.biases[1][k]))
        blocks.append(h * x[:, k:k + 1])
    torch.testing.assert_close(net(x), torch.cat(blocks, 1), rtol=1e-12, atol=1e-12)
    assert net.d_features == 12


def test_each_task_trains_only_its_own_module():
    torch.manual_seed(1)
    net = ModularMLP(input_spec=SPEC, modules=3, width=4, depth=2)
    x = torch.randn(5, 7)
    x[:, :3] = torch.tensor([0.0, 1.0, 0.0])  # every example belongs to task 2 (module index 1)
    net(x).pow(2).sum().backward()
    for grad in [p.grad for p in net.parameters()]:
        assert grad[1].abs().sum() > 0
        assert grad[0].abs().sum() == 0 and grad[2].abs().sum() == 0


@pytest.mark.parametrize("spec, params, message", [
    (SPEC, {"modules": 8}, "modules = 8 must lie in 1..7"),
    ({"kind": "tokens", "vocab_size": 5, "seq_len": 2}, {}, "use name = 'mlp'"),
    (SPEC, {"depth": 0}, "depth >= 1"),
    (SPEC, {"activation": "swish"}, "activation = 'swish'"),
])
def test_bad_configuration_is_one_clear_line(spec, params, message):
    with pytest.raises(ConfigError, match=message) as info:
        ModularMLP(input_spec=spec, **params)
    assert "\n" not in str(info.value)


def test_requested_feature_width_must_match():
    with pytest.raises(ConfigError, match="modules x width = 8 features, not d_out = 10"):
        ModularMLP(input_spec=SPEC, d_out=10, modules=2, width=4)


def test_trains_on_multitask_sparse_parity_through_the_engine(tmp_path):
    pytest.importorskip("overtone_torch")
    import xarray as xr
    from overtone.registry import registry
    from overtone.runs import run_config

    config = {"run": {"name": "mod", "seed": 0},
              "task": {"name": "multitask-sparse-parity", "n_tasks": 3, "n_bits": 8,
                       "eval_per_task": 32},
              "model": {"name": "modular-mlp", "modules": 3, "width": 16},
              "optimizer": {"name": "adamw", "lr": 0.01},
              "train": {"steps": 20, "batch_size": 32, "eval_every": 10}}
    run_dir = run_config(config, source="t.toml", default_name="mod", out=tmp_path,
                         registry=registry(refresh=True))
    metrics = xr.open_dataset(run_dir / "metrics.nc", engine="h5netcdf")
    assert metrics["eval_loss_skill"].sizes["skill"] == 3
    evaluated = metrics.dropna("step", subset=["eval_loss"])
    assert evaluated["step"].values.tolist() == [10, 20]
    assert bool(evaluated["eval_loss_skill"].notnull().all())
