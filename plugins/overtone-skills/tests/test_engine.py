"""The skill-models engine through overtone's run API and CLI."""

from __future__ import annotations

import numpy as np
import pytest
from overtone import ConfigError
from overtone.io import open_dataset
from overtone.plugins import load_plugins
from overtone.registry import Registry
from overtone.runs import run_config
from overtone_skills.onsets import SkillOnsets


@pytest.fixture
def registry():
    return Registry(load_plugins(use_entry_points=False, modules=["overtone_skills.plugin"]))


@pytest.mark.parametrize("model", ["geometry", "resource", "domino"])
def test_each_model_writes_the_run_layout(tmp_path, registry, model):
    config = {"run": {"engine": "skill-models", "name": model}, "model": {"name": model},
              "task": {"n_skills": 5}, "train": {"steps": 400}}
    run_dir = run_config(config, source="test.toml", default_name=model, out=tmp_path,
                         registry=registry)
    metrics = open_dataset(run_dir / "metrics.nc")
    assert metrics["skill_loss"].dims == ("step", "skill")
    assert metrics.sizes == {"step": 400, "skill": 5}
    np.testing.assert_allclose(metrics["task_frequency"].sum(), 1.0)
    assert (run_dir / "skills.png").stat().st_size > 1000
    assert (run_dir / "config.toml").exists()
    onsets = SkillOnsets()(metrics)
    assert onsets["learned"].values[0]


def test_geometry_run_is_deterministic_under_its_seed(tmp_path, registry):
    config = {"run": {"engine": "skill-models", "seed": 3}, "model": {"orthogonal": False},
              "train": {"steps": 50}}
    a = run_config({**config, "run": {**config["run"], "name": "a"}}, source="t", default_name="a",
                   out=tmp_path, registry=registry)
    b = run_config({**config, "run": {**config["run"], "name": "b"}}, source="t", default_name="b",
                   out=tmp_path, registry=registry)
    np.testing.assert_array_equal(open_dataset(a / "metrics.nc")["skill_level"],
                                  open_dataset(b / "metrics.nc")["skill_level"])


@pytest.mark.parametrize("section, key, value, message", [
    ("model", "name", "tensor", "name = 'tensor'"),
    ("task", "n_skills", 0, "n_skills = 0 is below the minimum 1"),
    ("train", "lr", -1.0, "lr = -1.0 must be above 0.0"),
    ("model", "n_params", 3, "need n_params >= 10"),
    ("model", "bogus", 1, "bogus"),
    ("model", "modules", 11, "modules = 11 exceeds n_skills = 10"),
    ("model", "modules", 0, "modules"),
])
def test_bad_config_is_one_line_and_leaves_no_run(tmp_path, registry, section, key, value,
                                                   message):
    config = {"run": {"engine": "skill-models", "name": "bad"}, section: {key: value}}
    with pytest.raises(ConfigError, match=message) as info:
        run_config(config, source="bad.toml", default_name="bad", out=tmp_path, registry=registry)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "bad").exists()


def test_modular_domino_run_matches_its_closed_form(tmp_path, registry):
    config = {"run": {"engine": "skill-models", "name": "modular"},
              "model": {"name": "domino", "modules": 4, "t0": 20.0},
              "task": {"n_skills": 8}, "train": {"steps": 120}}
    run_dir = run_config(config, source="t", default_name="m", out=tmp_path, registry=registry)
    metrics = open_dataset(run_dir / "metrics.nc")
    assert metrics.attrs["modules"] == 4
    level = metrics["skill_level"].values
    t0_m = 40.0  # sqrt(4) * 20 steps per skill inside a module
    np.testing.assert_allclose(level[30], [30 / t0_m] * 4 + [0.0] * 4, rtol=1e-12)
    np.testing.assert_allclose(level[60], [1.0] * 4 + [(60 - t0_m) / t0_m] * 4, rtol=1e-12)


@pytest.mark.parametrize("model, extra, message", [
    ("resource", {"modules": 2}, "modules applies to the domino and geometry models"),
    ("geometry", {"modules": 5, "n_params": 8}, "need n_params >= 10"),
    ("geometry", {"modules": 4, "n_params": 11}, "3 orthogonal task vectors per module need "
                                                 "n_params >= 12"),
])
def test_modules_outside_their_models_is_refused(tmp_path, registry, model, extra, message):
    config = {"run": {"engine": "skill-models", "name": "bad"}, "model": {"name": model, **extra}}
    with pytest.raises(ConfigError, match=message):
        run_config(config, source="bad.toml", default_name="bad", out=tmp_path, registry=registry)
