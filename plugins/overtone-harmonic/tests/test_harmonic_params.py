"""The harmonic loss's bounds live on its ``Param``s: one message from a config and from ``create()``."""

from __future__ import annotations

import overtone_harmonic.plugin as plugin
import pytest
from overtone import ConfigError
from overtone.config import resolve_component
from overtone.params import as_param
from overtone.testing import check_plugin, registry_for

HOST = {"d_in": 4, "n_classes": 3}
#: (key, value, message or None when accepted) just outside, at and just inside each bound.
CASES = [
    ("n", -0.5, "n = -0.5 must be above 0.0; allowed: 0.0 < n"),
    ("n", 0, "n = 0 must be above 0.0; allowed: 0.0 < n"),
    ("n", 0.0, "n = 0.0 must be above 0.0; allowed: 0.0 < n"),
    ("n", 1e-3, None),
    ("chunk_size", 0, "chunk_size = 0 is below the minimum 1; allowed: 1 <= chunk_size"),
    ("chunk_size", 1, None),
]
REFUSED = [case for case in CASES if case[2] is not None]
IDS = [f"{key}={value!r}" for key, value, _ in CASES]


def loss():
    (component,) = check_plugin(plugin)
    return component


def declared_bounds():
    """(key, a value just outside) for every declared bound, whatever it is."""
    outside = []
    for key, spec in loss().params.items():
        param = as_param(spec)
        if param.min is not None:
            outside.append((key, param.min - (1 if isinstance(param.min, int) else 0.5)))
        if param.max is not None:
            outside.append((key, param.max + (1 if isinstance(param.max, int) else 0.5)))
    return outside


def test_the_listed_cases_are_declared_bounds():
    assert {key for key, _, _ in CASES} <= {key for key, _ in declared_bounds()}
    assert {"n", "chunk_size"} <= {key for key, _ in declared_bounds()}


@pytest.mark.parametrize(("key", "value"), declared_bounds())
def test_every_declared_bound_refuses_a_value_outside_it_in_one_line(key, value):
    with pytest.raises(ConfigError) as info:
        loss().create(**HOST, **{key: value})
    assert str(info.value).startswith(f"loss 'harmonic': {key} = {value!r} ")
    assert "; allowed: " in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(("key", "value", "message"), REFUSED, ids=[f"{k}={v!r}" for k, v, _ in REFUSED])
def test_bound_violated_from_a_config_is_one_line(key, value, message):
    where = "exp.toml [loss]"
    with pytest.raises(ConfigError) as info:
        resolve_component(registry_for(plugin), "loss", {"name": "harmonic", key: value}, where)
    assert str(info.value) == f"{where} (loss 'harmonic'): {message}"


@pytest.mark.parametrize(("key", "value", "message"), CASES, ids=IDS)
def test_bound_from_create_is_one_line_and_the_bound_is_accepted_or_refused(key, value, message):
    if message is None:
        assert loss().create(**HOST, **{key: value}).weight.shape == (3, 4)
        return
    with pytest.raises(ConfigError) as info:
        loss().create(**HOST, **{key: value})
    assert str(info.value) == f"loss 'harmonic': {message}"


def test_the_class_keeps_its_guards_for_direct_use():
    from overtone_harmonic import HarmonicLoss

    with pytest.raises(ConfigError, match="n = 0 must be a positive number"):
        HarmonicLoss(**HOST, n=0)
    with pytest.raises(ConfigError, match="chunk_size = 0 must be at least 1"):
        HarmonicLoss(**HOST, chunk_size=0)


def test_listing_shows_the_bounds(capsys):
    from overtone.cli import main

    assert main(["plugins", "--verbose", "--kind", "loss"]) == 0
    out = capsys.readouterr().out
    assert "n = None  range: 0.0 < n  harmonic exponent" in out
    assert "chunk_size = None  range: 1 <= chunk_size" in out
