"""fourier-regression trained by `overtone run` with a KAN and mse: real targets, no accuracy,
the grid refined on schedule, and a classification loss refused in one line."""

import math

import numpy as np
import pytest
from overtone import ConfigError
from overtone.runs import run_config


def config(**loss):
    return {"run": {"name": "kanfit", "seed": 0},
            "task": {"name": "fourier-regression", "frequencies": [1.0, 2.0], "sampling": "grid",
                     "n_train": 64, "eval_points": 64},
            "model": {"name": "kan", "width": 4, "grid_size": 5, "grid_schedule": [[40, 10]]},
            "loss": {"name": "mse", **loss},
            "optimizer": {"name": "adam", "lr": 0.01},
            "train": {"steps": 80, "batch_size": 64, "eval_every": 20, "threads": 1}}


def test_kan_learns_a_sum_of_sinusoids_through_the_engine(tmp_path, registry):
    import xarray as xr
    from overtone_torch import load_run

    run_dir = run_config(config(), source="t.toml", default_name="kanfit", out=tmp_path,
                         registry=registry)
    metrics = xr.open_dataset(run_dir / "metrics.nc", engine="h5netcdf")
    loss = metrics["train_loss"].dropna("step").values
    assert loss[-1] < 0.5 * loss[0]  # y has mean square 1 (two unit sines): it is fitting
    assert np.isnan(metrics["eval_acc"].dropna("step", how="all").values).all()
    loaded = load_run(run_dir)  # the checkpoint holds the refined grid (G = 10) and loads back
    assert {m.grid_size for m in loaded.model.modules() if hasattr(m, "grid_size")} == {10}
    result = loaded.evaluate("eval")
    assert math.isnan(result["acc"])
    np.testing.assert_allclose(result["loss"], float(metrics["eval_loss"].dropna("step")[-1]),
                               rtol=1e-5)


def test_a_classification_loss_is_refused_before_the_run(tmp_path, registry):
    bad = config()
    bad["loss"] = {"name": "cross-entropy"}
    with pytest.raises(ConfigError, match="cannot train task 'fourier-regression'.*use name = 'mse'"):
        run_config(bad, source="t.toml", default_name="kanfit", out=tmp_path, registry=registry)
    assert not (tmp_path / "kanfit").exists()
