"""bottleneck-autoencoder and digits reconstruction: an independent forward pass, the task's
targets, bad parameters, and a short run through the engine with weight probes on the
bottleneck matrices."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from overtone import ConfigError
from overtone.runs import run_config

VECTOR = {"kind": "vector", "dim": 64, "output": "pooled"}


def make(registry, kind: str, name: str, **params):
    return registry.get(kind, name).create(**params)


def test_forward_is_encoder_two_bottlenecks_decoder(registry):
    torch.manual_seed(0)
    model = make(registry, "model", "bottleneck-autoencoder", input_spec=VECTOR, width=16, bottleneck=3).double()
    assert model.d_features == 16
    assert model.bottleneck1.weight.shape == (3, 16) and model.bottleneck2.weight.shape == (3, 3)
    x = torch.rand(5, 64, dtype=torch.float64)

    def layer(linear, h):  # written out: tanh(h W^T + b)
        return np.tanh(h @ linear.weight.detach().numpy().T + linear.bias.detach().numpy())

    h = x.numpy()
    for linear in (model.encoder, model.bottleneck1, model.bottleneck2, model.decoder):
        h = layer(linear, h)
    np.testing.assert_allclose(model(x).detach().numpy(), h, rtol=1e-12, atol=1e-12)
    b1, b2 = model.codes(x)
    assert b1.shape == b2.shape == (5, 3)


def test_init_scale_and_projection(registry):
    torch.manual_seed(1)
    model = make(registry, "model", "bottleneck-autoencoder", input_spec=VECTOR, d_out=10, width=256,
                 bottleneck=128, init_scale=2.0)
    assert model(torch.rand(4, 64)).shape == (4, 10) and model.d_features == 10
    std = model.bottleneck1.weight.detach().std().item()
    assert abs(std - 2.0 / 256**0.5) < 0.05 * 2.0 / 256**0.5  # N(0, s^2 / fan_in), 32,768 draws


@pytest.mark.parametrize(("params", "message"), [
    ({"bottleneck": 20, "width": 10}, "bottleneck = 20 is wider than width = 10"),
    ({"activation": "sine"}, "activation = 'sine'"),
    ({"width": 0}, "width = 0 is below the minimum 1"),
])
def test_bad_model_params(registry, params, message):
    with pytest.raises(ConfigError, match=message):
        make(registry, "model", "bottleneck-autoencoder", input_spec=VECTOR, **params)


def test_token_inputs_are_refused(registry):
    with pytest.raises(ConfigError, match="cannot take inputs of kind 'tokens'.*use name = 'mlp'"):
        make(registry, "model", "bottleneck-autoencoder",
             input_spec={"kind": "tokens", "vocab_size": 5, "seq_len": 2, "output": "pooled"})


def test_digits_reconstruction_targets_are_the_images(registry):
    task = make(registry, "task", "digits", seed=3, target="reconstruction")
    classes = make(registry, "task", "digits", seed=3)
    assert task.target == "regression" and task.n_outputs == 64 and task.n_classes is None
    for split in ("train", "eval"):
        assert torch.equal(task.y[split], task.x[split]) and task.y[split].dtype == torch.float32
        assert torch.equal(task.x[split], classes.x[split])  # the same split as the classification task
    assert task.describe()["target"] == "reconstruction" and classes.describe()["target"] == "classes"
    with pytest.raises(ConfigError, match="target = 'pixels' is not allowed"):
        make(registry, "task", "digits", seed=0, target="pixels")


def config(steps: int = 100) -> dict:
    return {"run": {"name": "ae", "seed": 0},
            "task": {"name": "digits", "target": "reconstruction"},
            "model": {"name": "bottleneck-autoencoder", "width": 32, "bottleneck": 4},
            "loss": {"name": "mse"},
            "optimizer": {"name": "adam", "lr": 0.01},
            "train": {"steps": steps, "batch_size": 64, "eval_every": 20, "threads": 1},
            "probes": [{"kind": "weights", "every": 20,
                        "names": ["model.bottleneck1.weight", "model.bottleneck2.weight"]}]}


def test_autoencoder_learns_digits_and_probes_its_bottlenecks(tmp_path, registry):
    import xarray as xr

    run_dir = run_config(config(), source="t.toml", default_name="ae", out=tmp_path, registry=registry)
    metrics = xr.open_dataset(run_dir / "metrics.nc", engine="h5netcdf")
    loss = metrics["eval_loss"].dropna("step").values
    task = registry.get("task", "digits").create(seed=0, target="reconstruction")
    images = task.x["eval"].double().numpy()
    mean_image = float(((images - images.mean(0)) ** 2).mean())  # MSE of predicting the mean image
    assert loss[-1] < 0.8 * mean_image  # it encodes more than the mean through a 4-unit code
    probes = xr.open_dataset(run_dir / "probes.nc", engine="h5netcdf")
    first = probes["weight_model_bottleneck1_weight"]
    assert first.dims == ("step", "model_bottleneck1_weight_out", "model_bottleneck1_weight_in")
    assert first.shape == (5, 4, 32) and probes["weight_model_bottleneck2_weight"].shape == (5, 4, 4)
    assert list(probes["step"].values) == [20, 40, 60, 80, 100]  # probes follow optimizer steps
    assert np.abs(np.diff(first.values, axis=0)).max() > 0  # the weights move between probes


def test_a_classification_loss_is_refused_for_reconstruction(tmp_path, registry):
    bad = config()
    bad["loss"] = {"name": "cross-entropy"}
    with pytest.raises(ConfigError, match="cannot train task 'digits'.*use name = 'mse'"):
        run_config(bad, source="t.toml", default_name="ae", out=tmp_path, registry=registry)
