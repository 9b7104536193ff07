"""load_run rebuilds a run for one's own analysis; a loss's extra metrics reach metrics.nc."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from overtone import ConfigError
from overtone.io import open_dataset
from overtone.runs import run_experiment
from torch_engine_testing import registry_with_test_plugin, small, write


@pytest.fixture(scope="module")
def test_registry():
    return registry_with_test_plugin()


def test_load_run_reproduces_the_final_evaluation(tmp_path, test_registry):
    import overtone_torch

    config = small(probes=[], train={"steps": 20, "eval_every": 10},
                   model={"name": "transformer", "n_layer": 1, "n_head": 2, "d_model": 16, "tie_weights": True})
    run_dir = run_experiment(write(tmp_path, config), out=tmp_path, registry=test_registry)
    loaded = overtone_torch.load_run(run_dir, registry=test_registry)
    assert loaded.step == 20 and not loaded.net.training
    assert loaded.loss.weight is loaded.model.token_embedding.weight  # the tie survives the load
    with open_dataset(run_dir / "metrics.nc") as metrics:
        for split in ("eval", "train"):
            result = loaded.evaluate(split, batch_size=64)
            assert result["acc"] == float(metrics[f"{split}_acc"].sel(step=20))  # same examples, same argmax
            assert result["loss"] == pytest.approx(float(metrics[f"{split}_loss"].sel(step=20)), rel=1e-6)
    saved = torch.load(run_dir / "checkpoint.pt", weights_only=False)["net"]
    for key, value in loaded.net.state_dict().items():
        assert torch.equal(value, saved[key]), key
    # the user's own analysis: features of the task's probe batch
    x, _ = loaded.task.probe_batch(5)
    with torch.no_grad():
        assert loaded.model(x).shape == (5, 16)


def test_load_run_of_a_directory_without_a_run(tmp_path):
    import overtone_torch

    with pytest.raises(ConfigError, match="holds no run"):
        overtone_torch.load_run(tmp_path)


def test_a_loss_reports_extra_metrics(tmp_path, test_registry):
    config = small(probes=[], loss={"name": "test-z-loss", "coefficient": 0.05},
                   train={"steps": 6, "log_every": 4, "accumulate": 2, "batch_size": 32})
    run_dir = run_experiment(write(tmp_path, config), out=tmp_path, registry=test_registry)
    with open_dataset(run_dir / "metrics.nc") as metrics:
        ce, penalty = metrics["loss_cross_entropy"].values, metrics["loss_z_penalty"].values
        assert metrics.step.values.tolist() == list(range(1, 7)) and np.isfinite(ce).all()
        assert (penalty > 0).all()
        # the parts add up to the loss that was trained on, step by step (micro-batch means)
        np.testing.assert_allclose(ce + penalty, metrics["train_batch_loss"].values, rtol=1e-6)
