"""skill-onsets on trajectories whose onsets are known in closed form, and its bad input."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from overtone import ConfigError, DatasetError
from overtone_skills import toy_models as tm
from overtone_skills.engine import metrics_dataset
from overtone_skills.onsets import SkillOnsets


def _metrics(trajectory, n):
    config = {"model": {"name": "domino", "loss": "mse", "n_params": 1000},
              "task": {"alpha": 2.0}, "train": {"lr": 3e-4}}
    return metrics_dataset(trajectory, config)


def test_domino_onsets_and_overlap_are_the_closed_form():
    t0 = 20.0
    ds = _metrics(tm.domino(n_skills=4, steps=100, t0=t0), 4)
    # squared loss (1 - s)^2 with s ramping over [(i-1) t0, i t0]: progress q = 1 - (1 - s)^2,
    # q >= 0.1 at s = 1 - sqrt(0.9), q >= 0.9 at s = 1 - sqrt(0.1)
    result = SkillOnsets(window=int(t0))(ds)
    s_on, s_off = 1 - np.sqrt(0.9), 1 - np.sqrt(0.1)
    expected_on = np.ceil(np.arange(4) * t0 + s_on * t0)
    expected_off = np.ceil(np.arange(4) * t0 + s_off * t0)
    np.testing.assert_array_equal(result["onset"], expected_on)
    np.testing.assert_array_equal(result["finish"], expected_off)
    np.testing.assert_array_equal(result["overlap"], expected_off[:-1] - expected_on[1:])
    assert float(result["median_overlap_fraction"]) < 0  # Domino: the next starts after
    parallel = SkillOnsets()(_metrics(tm.domino(n_skills=4, steps=2000, t0=t0,
                                                schedule="parallel"), 4))
    assert float(parallel["median_overlap_fraction"]) > 0.5
    # the next Domino skill has not moved when the previous finishes, then moves at once
    np.testing.assert_array_equal(result["head_start"], 0.0)
    assert np.isinf(result["acceleration"]).all()
    # independent exponential skills slow down: rate after / mean rate before < 1
    assert (parallel["acceleration"] < 1).all() and (parallel["head_start"] > 0.5).all()


def test_acceleration_is_the_rate_ratio():
    # skill 1 finishes at step 9; skill 2 moves at rate 0.01/step until then, 0.05/step after
    steps = np.arange(30)
    level2 = np.where(steps <= 9, 0.01 * steps, 0.09 + 0.05 * (steps - 9))
    losses = np.stack([np.clip(1 - steps / 10, 0, None), 1 - np.clip(level2, 0, 1)], axis=1)
    ds = xr.Dataset({"skill_loss": (("step", "skill"), losses)}, coords={"step": steps})
    result = SkillOnsets(window=5)(ds)
    assert float(result["finish"][0]) == 9
    np.testing.assert_allclose(float(result["head_start"][0]), 0.09)
    np.testing.assert_allclose(float(result["acceleration"][0]), 5.0)


def test_unlearned_skill_is_marked_and_nan():
    losses = np.ones((10, 2))
    losses[:, 0] = np.linspace(1, 0, 10)
    ds = xr.Dataset({"skill_loss": (("step", "skill"), losses)}, coords={"step": np.arange(10)})
    result = SkillOnsets()(ds)
    assert result["learned"].values.tolist() == [True, False]
    assert np.isnan(result["onset"].values[1])


def test_bad_input_messages():
    with pytest.raises(ConfigError, match="start < end"):
        SkillOnsets(start=0.9, end=0.1)
    with pytest.raises(DatasetError, match="no variable 'skill_loss'.*set variable"):
        SkillOnsets()(xr.Dataset({"train_loss": ("step", np.ones(3))}))
    with pytest.raises(DatasetError, match="expected \\('step', 'skill'\\)"):
        SkillOnsets()(xr.Dataset({"skill_loss": ("step", np.ones(3))}))
    nan = xr.Dataset({"skill_loss": (("step", "skill"), np.full((3, 2), np.nan))})
    with pytest.raises(DatasetError, match="NaN"):
        SkillOnsets()(nan)
