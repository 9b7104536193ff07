"""Bounds of the skill-models engine's sections, the task's and the analyzer's live on their ``Param``s.

A value just outside a bound (and a strict bound itself) gives one line from a config, from
``--param`` and from ``create()``; an inclusive bound and a value just inside a strict one are
accepted.
"""

from __future__ import annotations

import numpy as np
import overtone_skills.plugin as plugin
import pytest
import xarray as xr
from overtone import ConfigError
from overtone.cli import main
from overtone.config import resolve_component
from overtone.params import as_param
from overtone.testing import check_plugin, registry_for
from overtone_skills import engine
from overtone_skills.engine import SkillModelsEngine

#: (section, key, value, message or None when accepted), for the engine's [model] [task] [train].
ENGINE_CASES = [
    ("model", "n_params", 0, "n_params = 0 is below the minimum 1; allowed: 1 <= n_params"),
    ("model", "n_params", 1, None),
    ("model", "wasted", -0.5, "wasted = -0.5 must be above 0.0; allowed: 0.0 < wasted"),
    ("model", "wasted", 0.0, "wasted = 0.0 must be above 0.0; allowed: 0.0 < wasted"),
    ("model", "wasted", 1e-9, None),
    ("model", "t0", 0.0, "t0 = 0.0 must be above 0.0; allowed: 0.0 < t0"),
    ("model", "t0", 1e-9, None),
    ("model", "tau", 0, "tau = 0.0 must be above 0.0; allowed: 0.0 < tau"),
    ("model", "tau", 1e-9, None),
    ("task", "n_skills", 0, "n_skills = 0 is below the minimum 1; allowed: 1 <= n_skills"),
    ("task", "n_skills", 1, None),
    ("train", "steps", 0, "steps = 0 is below the minimum 1; allowed: 1 <= steps"),
    ("train", "steps", 1, None),
    ("train", "lr", -1.0, "lr = -1.0 must be above 0.0; allowed: 0.0 < lr"),
    ("train", "lr", 0.0, "lr = 0.0 must be above 0.0; allowed: 0.0 < lr"),
    ("train", "lr", 1e-12, None),
    ("train", "batch_size", -1, "batch_size = -1 is below the minimum 0; allowed: 0 <= batch_size"),
    ("train", "batch_size", 0, None),
]
#: (component, key, value, message or None when accepted) for the registered components.
CASES = [
    ("multitask-sparse-parity", key, value, message)
    for key in ("n_tasks", "n_bits", "k_bits", "eval_per_task")
    for value, message in ((0, f"{key} = 0 is below the minimum 1; allowed: 1 <= {key}"), (1, None))
] + [
    ("skill-onsets", "start", -0.5, "start = -0.5 is below the minimum 0.0; allowed: 0.0 <= start <= 1.0"),
    ("skill-onsets", "start", 0.0, None),
    ("skill-onsets", "end", 1.5, "end = 1.5 is above the maximum 1.0; allowed: 0.0 <= end <= 1.0"),
    ("skill-onsets", "end", 1.0, None),
    ("skill-onsets", "window", 0, "window = 0 is below the minimum 1; allowed: 1 <= window"),
    ("skill-onsets", "window", 1, None),
]
COMPONENTS = {c.name: c for c in check_plugin(plugin)}


SECTIONS = {"model": engine.MODEL, "task": engine.TASK, "train": engine.TRAIN}


def bounded(spec):
    return {key for key, raw in spec.items() if as_param(raw).min is not None or as_param(raw).max is not None}


def test_every_moved_check_is_declared_and_tested():
    declared = {(section, key) for section, spec in SECTIONS.items() for key in bounded(spec)}
    tested = {(section, key) for section, key, _, _ in ENGINE_CASES}
    moved = {("task", "n_skills"), ("train", "steps"), ("model", "n_params"), ("train", "batch_size"),
             ("train", "lr"), ("model", "wasted"), ("model", "tau"), ("model", "t0")}
    assert declared >= tested >= moved
    declared = {(name, key) for name, c in COMPONENTS.items() for key in bounded(c.params)}
    assert declared >= {(name, key) for name, key, _, _ in CASES} >= {
        ("multitask-sparse-parity", "n_tasks"), ("skill-onsets", "start"), ("skill-onsets", "window")}


def _outside(spec):
    """(key, a value just outside) for every declared bound of ``spec``."""
    cases = []
    for key in sorted(bounded(spec)):
        param = as_param(spec[key])
        for bound, sign in ((param.min, -1), (param.max, 1)):
            if bound is not None:
                cases.append((key, bound + sign * (1 if isinstance(bound, int) else 0.5)))
    return cases


@pytest.mark.parametrize(("section", "key", "value"),
                         [(section, key, value) for section, spec in SECTIONS.items() for key, value in _outside(spec)])
def test_every_declared_engine_bound_refuses_a_value_outside_it_in_one_line(section, key, value):
    with pytest.raises(ConfigError) as info:
        _resolve(section, key, value)
    assert str(info.value).startswith(f"exp.toml [{section}]: {key} = ")
    assert "; allowed: " in str(info.value) and "\n" not in str(info.value)


def _resolve(section, key, value):
    config = {"run": {"engine": "skill-models"}, "model": {"name": "resource"}}
    config.setdefault(section, {})[key] = value
    return SkillModelsEngine().resolve(config, source="exp.toml", registry=None)


@pytest.mark.parametrize(("section", "key", "value", "message"), ENGINE_CASES,
                         ids=[f"{s}.{k}={v}" for s, k, v, _ in ENGINE_CASES])
def test_engine_sections_bounds_from_a_config(section, key, value, message):
    if message is None:
        assert _resolve(section, key, value)[section][key] == value
        return
    with pytest.raises(ConfigError) as info:
        _resolve(section, key, value)
    assert str(info.value) == f"exp.toml [{section}]: {message}"


@pytest.mark.parametrize(("name", "key", "value", "message"), CASES, ids=[f"{n}.{k}={v}" for n, k, v, _ in CASES])
def test_component_bounds_from_a_config_and_from_create(name, key, value, message):
    component = COMPONENTS[name]
    where = f"exp.toml [{component.kind}]"
    host = {"seed": 0} if component.kind == "task" else {}
    if message is not None:
        with pytest.raises(ConfigError) as info:
            resolve_component(registry_for(plugin), component.kind, {"name": name, key: value}, where)
        assert str(info.value) == f"{where} ({component.kind} {name!r}): {message}"
        with pytest.raises(ConfigError) as info:
            component.create(**host, **{key: value})
        assert str(info.value) == f"{component.kind} {name!r}: {message}"
        return
    assert resolve_component(registry_for(plugin), component.kind, {"name": name, key: value}, where)[1][key] == value
    if component.kind == "task":
        pytest.importorskip("torch")
        if key == "n_bits":  # k_bits (3 by default) must fit in n_bits: the class's own relation check
            host["k_bits"] = 1
    assert component.create(**host, **{key: value}) is not None


def test_the_classes_keep_their_guards_for_direct_use():
    from overtone_skills.onsets import SkillOnsets

    with pytest.raises(ConfigError, match="window = 0 must be >= 1 step"):
        SkillOnsets(window=0)
    with pytest.raises(ConfigError, match="need 0 <= start < end <= 1"):
        SkillOnsets(end=1.5)


def test_bound_violated_from_param_on_the_command_line(tmp_path, capsys):
    losses = np.linspace(1.0, 0.0, 20)[:, None] * np.ones((1, 2))
    xr.Dataset({"skill_loss": (("step", "skill"), losses)},
               coords={"step": np.arange(20)}).to_netcdf(tmp_path / "metrics.nc", engine="h5netcdf")
    assert main(["analyze", str(tmp_path), "--input", "metrics", "--with", "skill-onsets",
                 "--param", "skill-onsets.window=0"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.endswith("window = 0 is below the minimum 1; allowed: 1 <= window"), err
    assert not (tmp_path / "analysis.nc").exists()
