"""The predictions probe: a fourier-regression run's outputs on its evaluation inputs, read by
frequency-error from the run directory (during training and by `overtone analyze`) and checked
against numpy's FFT of the same outputs."""

import numpy as np
import pytest
import xarray as xr
from overtone import ConfigError
from overtone.runs import run_config

pytest.importorskip("overtone_dynamics")  # frequency-error lives in overtone-dynamics

CYCLES = [1.0, 2.0, 3.0]  # cycles per unit; the targets have 1 and 2, not 3
N = 64  # evaluation grid on [-1, 1): frequency f cycles/unit sits on FFT bin 2 f


def config(**task):
    analyzer = {"name": "frequency-error", "every": 20,
                "frequencies": [2 * np.pi * f for f in CYCLES]}
    return {"run": {"name": "fit", "seed": 0},
            "task": {"name": "fourier-regression", "frequencies": [1.0, 2.0], "amplitudes": [1.0, 0.5],
                     "sampling": "grid", "n_train": 32, "eval_points": N, **task},
            "model": {"name": "mlp", "width": 16, "depth": 1, "activation": "tanh"},
            "loss": {"name": "mse"},
            "optimizer": {"name": "adam", "lr": 0.01},
            "train": {"steps": 40, "batch_size": 32, "eval_every": 20, "threads": 1},
            "probes": [{"kind": "predictions", "every": 10}],
            "analyzers": [analyzer]}


def fft_relative_errors(outputs: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """|FFT(f - y)| / |FFT(y)| and |FFT(f - y)| / N at bins 2 f (numpy FFT, float64)."""
    bins = [int(2 * f) for f in CYCLES]
    error = np.abs(np.fft.fft(outputs - targets, axis=-1)[..., bins]) / N
    target = np.abs(np.fft.fft(targets)[bins]) / N
    with np.errstate(divide="ignore", invalid="ignore"):
        return error / target, error


def test_frequency_error_reads_a_regression_run(tmp_path, registry):
    from overtone.analysis import analyze
    from overtone_torch import load_run

    run_dir = run_config(config(), source="t.toml", default_name="fit", out=tmp_path, registry=registry)
    probes = xr.open_dataset(run_dir / "probes.nc", engine="h5netcdf")
    assert probes["predictions"].dims == ("step", "eval_sample", "output")
    assert probes["predictions"].attrs["output"] == "values"
    assert probes["step"].values.tolist() == [10, 20, 30, 40]
    x = probes["inputs"].values[:, 0].astype(np.float64)
    np.testing.assert_allclose(x, -1 + 2 * np.arange(N) / N, atol=1e-7)  # the evaluation grid, in order
    y = probes["targets"].values[:, 0].astype(np.float64)
    np.testing.assert_allclose(y, np.sin(2 * np.pi * x) + 0.5 * np.sin(4 * np.pi * x), atol=1e-5)
    outputs = probes["predictions"].values[..., 0].astype(np.float64)  # (step, sample)
    # the last step's outputs are the checkpointed model's on the evaluation inputs
    loaded = load_run(run_dir)
    import torch

    with torch.no_grad():
        final = loaded.net.loss.scores(loaded.model(loaded.task.x["eval"])).numpy()[:, 0]
    np.testing.assert_allclose(outputs[-1], final, rtol=1e-5, atol=1e-6)
    relative, absolute = fft_relative_errors(outputs, y)

    during = xr.open_dataset(run_dir / "analysis.nc", group="frequency-error", engine="h5netcdf")
    assert during["step"].values.tolist() == [10, 20, 30, 40]  # the last in-training run: every step
    np.testing.assert_allclose(during["relative_error"].values[:, :2], relative[:, :2], rtol=1e-4)
    assert np.isnan(during["relative_error"].values[:, 2]).all()  # no target content at 3 cycles
    np.testing.assert_allclose(during["abs_error"].values, absolute, rtol=1e-4, atol=1e-7)

    done = analyze(run_dir, [("frequency-error", {"frequencies": [2 * np.pi * f for f in CYCLES]})],
                   write=False, registry=registry)
    assert not done.failures
    after = next(iter(done.results.values()))
    assert after["step"].values.tolist() == [10, 20, 30, 40]
    np.testing.assert_allclose(after["relative_error"].values[:, :2], relative[:, :2], rtol=1e-4)
    assert (after["relative_error"].values[-1, :2] < after["relative_error"].values[0, :2]).any()


def test_two_dimensional_inputs_and_a_sequence_task(tmp_path, registry):
    run = config(dim=2, frequencies=[[1.0, 0.0], [0.0, 2.0]], n_train=8, eval_points=8)
    run["train"].update(batch_size=64, steps=10)
    run["analyzers"] = []
    run_dir = run_config(run, source="t.toml", default_name="fit", out=tmp_path, registry=registry)
    probes = xr.open_dataset(run_dir / "probes.nc", engine="h5netcdf")
    assert probes["predictions"].shape == (1, 64, 1) and probes["inputs"].shape == (64, 2)
    x = probes["inputs"].values.astype(np.float64)
    np.testing.assert_allclose(probes["targets"].values[:, 0],
                               np.sin(2 * np.pi * x[:, 0]) + 0.5 * np.sin(4 * np.pi * x[:, 1]), atol=1e-5)
    lm = {"run": {"name": "lm", "seed": 0}, "task": {"name": "char-text", "context": 8},
          "model": {"name": "transformer", "n_layer": 1, "d_model": 16, "n_head": 2},
          "train": {"steps": 2, "batch_size": 4}, "probes": [{"kind": "predictions"}]}
    with pytest.raises(ConfigError, match="predictions.*one output per example"):
        run_config(lm, source="t.toml", default_name="lm", out=tmp_path, registry=registry)


def test_a_classification_task_gets_probabilities_and_one_hot_targets(tmp_path, registry):
    run = {"run": {"name": "digits", "seed": 1}, "task": {"name": "digits", "train_fraction": 0.5},
           "model": {"name": "mlp", "width": 32},
           "optimizer": {"name": "adam", "lr": 0.01},
           "train": {"steps": 20, "batch_size": 128, "eval_every": 20, "threads": 1},
           "probes": [{"kind": "predictions", "every": 20}]}
    run_dir = run_config(run, source="t.toml", default_name="digits", out=tmp_path, registry=registry)
    probes = xr.open_dataset(run_dir / "probes.nc", engine="h5netcdf")
    metrics = xr.open_dataset(run_dir / "metrics.nc", engine="h5netcdf")
    q = probes["predictions"].values[-1]  # (eval_sample, 10)
    targets = probes["targets"].values
    assert probes["predictions"].attrs["output"] == "probabilities" and q.shape == targets.shape == (899, 10)
    np.testing.assert_allclose(q.sum(1), 1.0, atol=1e-5)
    assert set(np.unique(targets)) == {0.0, 1.0} and (targets.sum(1) == 1).all()
    assert probes["inputs"].shape == (899, 64) and float(probes["inputs"].max()) <= 1.0
    accuracy = float((q.argmax(1) == targets.argmax(1)).mean())
    assert accuracy == pytest.approx(float(metrics["eval_acc"].dropna("step")[-1]), abs=1e-6)
