"""The fourier-regression task: targets against a NumPy formula, splits, seeds, the DFT grid."""

import numpy as np
import pytest
import torch
from overtone import ConfigError


def create(registry, seed=0, **params):
    return registry.get("task", "fourier-regression").create(seed=seed, **params)


def test_targets_are_the_sum_of_sinusoids(registry):
    task = create(registry, frequencies=[2, 7.5], amplitudes=[1.0, 0.3], phases=[0.5, -1.0], n_train=50)
    x = task.x["train"].double().numpy()[:, 0]
    expected = np.sin(2 * np.pi * 2 * x + 0.5) + 0.3 * np.sin(2 * np.pi * 7.5 * x - 1.0)
    np.testing.assert_allclose(task.y["train"].numpy(), expected, rtol=0, atol=1e-6)
    assert task.y["train"].dtype == torch.float32 and task.y["train"].shape == (50,)
    assert task.n_classes is None and task.n_outputs == 1 and task.target == "regression"
    assert task.input_spec == {"kind": "vector", "dim": 1, "output": "pooled"}


def test_n_dimensional_targets(registry):
    task = create(registry, dim=2, frequencies=[[1, 0], [2, 3]], eval_points=16, n_train=40)
    x = task.x["eval"].double().numpy()
    expected = np.sin(2 * np.pi * x[:, 0]) + np.sin(2 * np.pi * (2 * x[:, 0] + 3 * x[:, 1]))
    np.testing.assert_allclose(task.y["eval"].numpy(), expected, rtol=0, atol=1e-6)
    grid, coords = task.input_grid()
    assert grid.shape == (256, 2) and list(coords) == ["x0", "x1"] and len(coords["x0"]) == 16


def test_the_dft_of_the_evaluation_grid_has_the_target_amplitudes(registry):
    """On [-1, 1) with N points, frequency k lies on bin 2k with |DFT| = N A / 2."""
    task = create(registry, frequencies=[5, 10, 50], amplitudes=[1.0, 0.5, 0.25], eval_points=512)
    spectrum = np.abs(np.fft.rfft(task.y["eval"].double().numpy())) / (512 / 2)
    np.testing.assert_allclose(spectrum[[10, 20, 100]], [1.0, 0.5, 0.25], atol=1e-5)
    spectrum[[10, 20, 100]] = 0
    assert spectrum.max() < 1e-5


def test_seeded_and_different_across_seeds(registry):
    a, b, c = create(registry, seed=1), create(registry, seed=1), create(registry, seed=2)
    assert torch.equal(a.x["train"], b.x["train"]) and not torch.equal(a.x["train"], c.x["train"])
    assert torch.equal(a.x["eval"], c.x["eval"])  # the evaluation grid does not depend on the seed
    assert a.x["train"].min() >= -1 and a.x["train"].max() < 1


def test_grid_sampling_sits_between_evaluation_points(registry):
    task = create(registry, sampling="grid", n_train=8, domain=[0, 1])
    np.testing.assert_allclose(task.x["train"][:, 0].numpy(), (np.arange(8) + 0.5) / 8, atol=1e-7)
    assert task.train_size == 8


def test_noise_only_on_training_targets(registry):
    clean, noisy = create(registry, n_train=2000), create(registry, n_train=2000, noise=0.1)
    assert abs((noisy.y["train"] - clean.y["train"]).std().item() - 0.1) < 0.01
    assert torch.equal(noisy.y["eval"], clean.y["eval"])


@pytest.mark.parametrize(("params", "message"), [
    ({"frequencies": []}, "frequencies is empty"),
    ({"dim": 2, "frequencies": [1, 2]}, "must be a list of 2 numbers for dim = 2"),
    ({"amplitudes": [1.0]}, "amplitudes has 1 values for 10 frequencies"),
    ({"sampling": "sobol"}, "sampling = 'sobol' is not allowed; allowed values: 'random', 'grid'"),
    ({"domain": [1, 0]}, "low < high"),
    ({"dim": 3, "eval_points": 512}, "lower eval_points"),
    ({"noise": -1.0}, "noise = -1.0 is below the minimum 0.0; allowed: 0.0 <= noise"),
])
def test_bad_parameters_are_refused_in_one_line(registry, params, message):
    with pytest.raises(ConfigError, match=message) as info:
        create(registry, **params)
    assert "\n" not in str(info.value)


def test_batches_follow_the_task_contract(registry):
    task = create(registry, n_train=100, eval_points=64)
    x, y = task.sample_batch("train", 32, torch.Generator().manual_seed(0))
    assert x.shape == (32, 1) and y.shape == (32,) and x.dtype == torch.float32
    assert sum(len(y) for _, y in task.eval_batches(10)) == 64
    assert task.describe()["frequencies"].startswith("[5.0, 10.0")
