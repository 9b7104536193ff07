"""FOCUS's and Signum's bounds live on their ``Param``s: one message from a config and from ``create()``.

The classes keep their own checks (``overtone_focus.checks``) for direct use from Python; these
tests check the declared bounds and that both agree on every value tried.
"""

from __future__ import annotations

import overtone_focus.plugin as plugin
import pytest
import torch
from overtone import ConfigError
from overtone.cli import main
from overtone.config import resolve_component
from overtone.params import as_param
from overtone.testing import check_plugin, registry_for

COMPONENTS = {c.name: c for c in check_plugin(plugin)}
BETAS = "allowed: 0.0 <= betas[{i}] < 1.0"
#: (optimizer, key, value, message or None when accepted) just outside and at each bound, and
#: just inside a strict one.
CASES = [
    ("focus", "lr", -0.5, "lr = -0.5 is below the minimum 0.0; allowed: 0.0 <= lr"),
    ("focus", "lr", float("nan"), "lr = nan is below the minimum 0.0; allowed: 0.0 <= lr"),
    ("focus", "lr", 0.0, None),
    ("focus", "betas", [-0.5, 0.999], "betas[0] = -0.5 is below the minimum 0.0; " + BETAS.format(i=0)),
    ("focus", "betas", [0.0, 0.999], None),
    ("focus", "betas", [0.9, 1.5], "betas[1] = 1.5 must be below 1.0; " + BETAS.format(i=1)),
    ("focus", "betas", [1.0, 0.999], "betas[0] = 1.0 must be below 1.0; " + BETAS.format(i=0)),
    ("focus", "betas", [0.9, 0.99999], None),
    ("focus", "gamma", -0.5, "gamma = -0.5 is below the minimum 0.0; allowed: 0.0 <= gamma"),
    ("focus", "gamma", 0.0, None),
    ("focus", "weight_decay", -0.5, "weight_decay = -0.5 is below the minimum 0.0; allowed: 0.0 <= weight_decay"),
    ("focus", "weight_decay", 0.0, None),
    ("signum", "lr", -0.5, "lr = -0.5 is below the minimum 0.0; allowed: 0.0 <= lr"),
    ("signum", "lr", 0.0, None),
    ("signum", "momentum", -0.5, "momentum = -0.5 is below the minimum 0.0; allowed: 0.0 <= momentum < 1.0"),
    ("signum", "momentum", 0.0, None),
    ("signum", "momentum", 1.5, "momentum = 1.5 must be below 1.0; allowed: 0.0 <= momentum < 1.0"),
    ("signum", "momentum", 1.0, "momentum = 1.0 must be below 1.0; allowed: 0.0 <= momentum < 1.0"),
    ("signum", "momentum", 0.99999, None),
    ("signum", "weight_decay", -0.5, "weight_decay = -0.5 is below the minimum 0.0; allowed: 0.0 <= weight_decay"),
    ("signum", "weight_decay", 0.0, None),
]
REFUSED = [case for case in CASES if case[3] is not None]


def ids(cases):
    return [f"{name}.{key}={value}" for name, key, value, _ in cases]


def test_every_bound_is_tested_on_both_sides():
    declared = set()
    for name, component in COMPONENTS.items():
        for key, spec in component.params.items():
            param = as_param(spec)
            param = param.element() if param.is_list else param
            declared |= {(name, key, side) for side in ("min", "max") if getattr(param, side) is not None}
    tested = {(name, key) for name, key, _, _ in CASES}
    assert {(name, key) for name, key, _ in declared} == tested
    assert ("focus", "betas", "max") in declared and ("signum", "momentum", "max") in declared


@pytest.mark.parametrize(("name", "key", "value", "message"), REFUSED, ids=ids(REFUSED))
def test_bound_violated_from_a_config_is_one_line(name, key, value, message):
    where = "exp.toml [optimizer]"
    with pytest.raises(ConfigError) as info:
        resolve_component(registry_for(plugin), "optimizer", {"name": name, key: value}, where)
    assert str(info.value) == f"{where} (optimizer {name!r}): {message}"


@pytest.mark.parametrize(("name", "key", "value", "message"), CASES, ids=ids(CASES))
def test_bound_from_create_is_one_line_and_the_class_agrees(name, key, value, message):
    component = COMPONENTS[name]
    weights = [torch.nn.Parameter(torch.ones(2))]
    if message is None:
        assert isinstance(component.create(weights, **{key: value}), torch.optim.Optimizer)
        return
    with pytest.raises(ConfigError) as info:
        component.create(weights, **{key: value})
    assert str(info.value) == f"optimizer {name!r}: {message}"
    with pytest.raises(ConfigError):  # the class's own check, kept for direct use, refuses it too
        component.load()(weights, **{key: value})


def test_listing_shows_the_bounds(capsys):
    assert main(["plugins", "--verbose", "--kind", "optimizer"]) == 0
    out = capsys.readouterr().out
    assert "betas = [0.9, 0.999]  range: 0.0 <= each element of betas < 1.0" in out
    assert "momentum = 0.9  range: 0.0 <= momentum < 1.0" in out
