"""Config loading, overrides and validation: every error names file, key and the fix."""

from __future__ import annotations

import pytest
from overtone import ConfigError, Param
from overtone.config import apply_overrides, load_config, parse_value, resolve_component
from overtone.params import resolve_params
from overtone.runs import resolve_experiment

SPEC = {"width": 128, "lr": 1e-3, "act": Param("relu", choices=("relu", "gelu")), "tied": False}


def test_defaults_filled_and_ints_widened():
    assert resolve_params({"lr": 1}, SPEC, "x") == {"width": 128, "lr": 1.0, "act": "relu", "tied": False}


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"widht": 3}, "exp.toml [model]: unknown key 'widht'; allowed keys: act, lr, tied, width (did you mean 'width'?)"),
        ({"width": "128"}, "exp.toml [model]: width = '128' has type str; expected int"),
        ({"width": 1.5}, "exp.toml [model]: width = 1.5 has type float; expected int"),
        ({"tied": 1}, "exp.toml [model]: tied = 1 has type int; expected bool"),
        ({"width": True}, "exp.toml [model]: width = True has type bool; expected int"),
        ({"act": "tanh"}, "exp.toml [model]: act = 'tanh' is not allowed; allowed values: 'relu', 'gelu'"),
    ],
)
def test_bad_values(given, message):
    with pytest.raises(ConfigError) as info:
        resolve_params(given, SPEC, "exp.toml [model]")
    assert str(info.value) == message


def test_required_param():
    with pytest.raises(ConfigError, match=r"x: missing required key 'path' \(text file\)"):
        resolve_params({}, {"path": Param(required=True, type=str, help="text file")}, "x")


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.toml")
    assert str(info.value) == f"config file {str(tmp_path / 'nope.toml')!r} not found; check the path"


def test_invalid_toml_names_line(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[train]\nsteps = = 3\n")
    with pytest.raises(ConfigError, match=r"bad.toml: invalid TOML: .*line 2"):
        load_config(path)


def test_overrides():
    config = apply_overrides({"train": {"steps": 1}}, ["train.steps=500", "optimizer.lr=3e-4", "run.name=abc", "x.flag=true", "x.list=[1, 2]"])
    assert config == {"train": {"steps": 500}, "optimizer": {"lr": 3e-4}, "run": {"name": "abc"}, "x": {"flag": True, "list": [1, 2]}}
    assert parse_value("hello world") == "hello world"
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        apply_overrides({}, ["train.steps"])
    with pytest.raises(ConfigError, match="'steps' is a value, not a section"):
        apply_overrides({"train": {"steps": 1}}, ["train.steps.x=2"])


def test_resolve_component_errors(example_registry):
    with pytest.raises(ConfigError) as info:
        resolve_component(example_registry, "analyzer", {"name": "momnets"}, "exp.toml [[analyzers]]")
    assert str(info.value) == "exp.toml [[analyzers]]: no analyzer named 'momnets'; installed: moments (did you mean 'moments'?)"
    component, params = resolve_component(example_registry, "analyzer", {"name": "moments", "dim": "x"}, "w")
    assert params == {"name": "moments", "variable": "train_loss", "dim": "x"}
    with pytest.raises(ConfigError, match="w: missing key 'name'; choose one of: moments"):
        resolve_component(example_registry, "analyzer", {}, "w")


def test_experiment_validation_names_section(example_registry):
    ok = {"run": {"engine": "linreg"}, "train": {"steps": 5}}
    _, resolved = resolve_experiment(ok, source="e.toml", default_name="e", registry=example_registry)
    assert resolved["run"] == {"name": "e", "engine": "linreg", "seed": 0, "description": ""}
    assert resolved["train"]["lr"] == 0.1 and "overtone" in resolved["versions"]
    with pytest.raises(ConfigError) as info:
        resolve_experiment({**ok, "trian": {}}, source="e.toml", default_name="e", registry=example_registry)
    assert str(info.value) == "e.toml: unknown section [trian]; allowed sections: run, data, train (did you mean [train]?)"
    with pytest.raises(ConfigError) as info:
        resolve_experiment({"run": {"engine": "linreg", "sede": 1}}, source="e.toml", default_name="e", registry=example_registry)
    assert str(info.value).startswith("e.toml [run]: unknown key 'sede'; allowed keys: description, engine, name, seed")
    with pytest.raises(ConfigError) as info:
        resolve_experiment({"run": {"engine": "lin"}}, source="e.toml", default_name="e", registry=example_registry)
    assert str(info.value) == "e.toml [run] engine: no engine named 'lin'; installed: linreg (did you mean 'linreg'?)"
