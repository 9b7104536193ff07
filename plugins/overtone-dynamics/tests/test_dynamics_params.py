"""Bounds live on each analyzer's ``Param``: one check for a config, ``--param`` and ``create()``."""

from __future__ import annotations

import json

import numpy as np
import overtone_dynamics.plugin as plugin
import pytest
import xarray as xr
from overtone import ConfigError, Param
from overtone.cli import main
from overtone.config import resolve_component
from overtone.params import as_param
from overtone.testing import check_plugin, registry_for

#: The range checks of the analyzers' ``__init__`` that the declared params now carry.
BOUNDED = {
    ("embedding-fourier", "n_keys"), ("embedding-fourier", "p"),
    ("progress-measures", "n_keys"), ("progress-measures", "key_frequencies"),
    ("frequency-error", "n_frequencies"), ("frequency-error", "floor"), ("frequency-error", "k_max"),
    ("pca-structure", "n_components"), ("pca-structure", "top"),
    ("dse", "max_samples"), ("dse", "sigma"), ("dse", "t"), ("dse", "base"),
    ("dsmi", "max_samples"), ("dsmi", "repetitions"), ("dsmi", "n_bins"),
    ("dsmi", "sigma"), ("dsmi", "t"), ("dsmi", "base"),
    ("scaling-law", "n_starts"), ("scaling-law", "n_bootstrap"), ("scaling-law", "delta"),
    ("scaling-law", "confidence"), ("condensation", "threshold"),
}
#: (component, key, side) of the strict bounds among them.
STRICT = {
    ("frequency-error", "k_max", "min"), ("frequency-error", "floor", "max"),
    ("dse", "sigma", "min"), ("dse", "t", "min"), ("dse", "base", "min"),
    ("dsmi", "sigma", "min"), ("dsmi", "t", "min"), ("dsmi", "base", "min"),
    ("scaling-law", "delta", "min"), ("scaling-law", "confidence", "min"),
    ("scaling-law", "confidence", "max"), ("condensation", "threshold", "min"),
}

#: Bounds the class itself checks only when the data arrives (key_frequencies against p).
CHECKED_ON_DATA = {("progress-measures", "key_frequencies")}


def bound_values(scalar, name, side):
    """(value, message, or None when accepted) just outside, at and (strict) just inside a bound."""
    bound, strict = (scalar.min, scalar.exclusive_min) if side == "min" else (scalar.max, scalar.exclusive_max)
    outward = -1 if side == "min" else 1
    step, tiny = (1, 1) if isinstance(bound, int) else (0.5, 1e-6)
    if strict:
        text = f"must be above {bound!r}" if side == "min" else f"must be below {bound!r}"
    else:
        text = f"is below the minimum {bound!r}" if side == "min" else f"is above the maximum {bound!r}"

    def refused(value):
        return value, f"{name} = {value!r} {text}; allowed: {scalar.describe_range(name)}"

    if strict:
        return [refused(bound + outward * step), refused(bound), (bound - outward * tiny, None)]
    return [refused(bound + outward * step), (bound, None)]


def bounded_params():
    """(component, key, side, strict, value, message or None when accepted) per bound."""
    cases = []
    for component in check_plugin(plugin):
        for key, spec in component.params.items():
            param = as_param(spec)
            scalar = param.element() if param.is_list else param
            for side in ("min", "max"):
                if getattr(scalar, side) is None:
                    continue
                strict = scalar.exclusive_min if side == "min" else scalar.exclusive_max
                name = f"{key}[0]" if param.is_list else key
                for value, message in bound_values(scalar, name, side):
                    cases.append((component, key, side, strict, [value] if param.is_list else value, message))
    return cases


ALL = bounded_params()
CASES = [(c, key, value, message) for c, key, _, _, value, message in ALL if message is not None]
ACCEPTED = [(c, key, value) for c, key, _, _, value, message in ALL if message is None]
IDS = [f"{c.name}.{key}={value}" for c, key, value, _ in CASES]


def test_every_moved_check_is_declared():
    assert {(c.name, key) for c, key, *_ in ALL} >= BOUNDED
    assert {(c.name, key, side) for c, key, side, strict, *_ in ALL if strict} == STRICT
    # every strict bound has its bound itself refused and a value just inside accepted
    for name, key, side in STRICT:
        values = [(v, m) for c, k, s, _, v, m in ALL if (c.name, k, s) == (name, key, side)]
        bound = getattr(registry_for(plugin).get("analyzer", name).params[key], side)
        assert [m is None for v, m in values if v == bound] == [False]
        assert any(m is None for v, m in values)


@pytest.mark.parametrize(("component", "key", "bad", "message"), CASES, ids=IDS)
def test_bound_violated_from_a_config_is_one_line(component, key, bad, message):
    where = "exp.toml [[analyzers]] #1"
    with pytest.raises(ConfigError) as info:
        resolve_component(registry_for(plugin), "analyzer", {"name": component.name, key: bad}, where)
    assert str(info.value) == f"{where} (analyzer {component.name!r}): {message}"


@pytest.mark.filterwarnings("ignore:analyzer 'grokking-frequency' is renamed:FutureWarning")
@pytest.mark.parametrize(("component", "key", "bad", "message"), CASES, ids=IDS)
def test_bound_violated_from_create_is_one_line_and_the_analyzers_guard_agrees(component, key, bad, message):
    with pytest.raises(ConfigError) as info:
        component.create(**{key: bad})
    assert str(info.value) == f"analyzer {component.name!r}: {message}"
    if (component.name, key) in CHECKED_ON_DATA:
        return
    with pytest.raises(ConfigError):  # the class's own guard, kept for direct use, refuses it too
        component.load()(**{key: bad})


@pytest.mark.filterwarnings("ignore:analyzer 'grokking-frequency' is renamed:FutureWarning")
@pytest.mark.parametrize(("component", "key", "value"), ACCEPTED,
                         ids=[f"{c.name}.{key}={value}" for c, key, value in ACCEPTED])
def test_inclusive_bounds_and_values_just_inside_strict_ones_are_accepted(component, key, value):
    where = "exp.toml [[analyzers]] #1"
    resolved = resolve_component(registry_for(plugin), "analyzer", {"name": component.name, key: value}, where)
    assert resolved[1][key] == value
    assert callable(component.create(**{key: value}))


def test_the_analyzers_own_guards_still_refuse_direct_use():
    from overtone_dynamics.diffusion import DSE, DSMI
    from overtone_dynamics.fourier import EmbeddingFourier
    from overtone_dynamics.frequency import FrequencyError
    from overtone_dynamics.geometry import Condensation
    from overtone_dynamics.scaling import ScalingLaw
    from overtone_dynamics.spectrum import PCAStructure

    for make, text in ((lambda: DSE(max_samples=1), "max_samples = 1"),
                       (lambda: DSMI(n_bins=1), "n_bins >= 2"),
                       (lambda: EmbeddingFourier(p=2), "p = 2"),
                       (lambda: PCAStructure(top=0), "top must be at least 1"),
                       (lambda: DSE(sigma=0.0), "sigma = 0.0; the kernel bandwidth must be positive"),
                       (lambda: DSMI(base=1.0), "base = 1.0; the logarithm base must exceed 1"),
                       (lambda: FrequencyError(floor=1.0), r"floor = 1.0; it must be in \[0, 1\)"),
                       (lambda: ScalingLaw(confidence=1.0), r"confidence = 1.0; it must lie in \(0, 1\)"),
                       (lambda: Condensation(threshold=0.0), r"threshold = 0.0; it must lie in \(0, 1\]")):
        with pytest.raises(ConfigError, match=text):
            make()


def test_list_elements_are_typed():
    component = registry_for(plugin).get("analyzer", "frequency-error")
    with pytest.raises(ConfigError) as info:
        component.create(frequencies=[1.0, "x"])
    assert str(info.value) == "analyzer 'frequency-error': frequencies[1] = 'x' has type str; expected float"
    with pytest.raises(ConfigError, match=r"key_frequencies = 4 is a single int; expected a list of int"):
        registry_for(plugin).get("analyzer", "progress-measures").create(key_frequencies=4)


def test_bound_violated_from_param_on_the_command_line(tmp_path, capsys):
    hidden = np.random.default_rng(0).normal(size=(2, 20, 4))
    xr.Dataset({"hidden": (("step", "sample", "dim"), hidden)},
               coords={"step": [0, 1]}).to_netcdf(tmp_path / "probes.nc", engine="h5netcdf")
    assert main(["analyze", str(tmp_path), "--with", "dse", "--param", "dse.max_samples=1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert err.endswith("max_samples = 1 is below the minimum 2; allowed: 2 <= max_samples"), err
    assert not (tmp_path / "analysis.nc").exists()


def test_listing_shows_the_bounds(capsys):
    assert main(["plugins", "--verbose", "--kind", "analyzer"]) == 0
    out = capsys.readouterr().out
    assert "range: 2 <= max_samples" in out
    assert "range: 1 <= each element of key_frequencies" in out
    assert "sigma = 10.0  range: 0.0 < sigma  Gaussian kernel bandwidth" in out
    assert "confidence = 0.95  range: 0.0 < confidence < 1.0" in out
    assert "floor = 0.001  range: 0.0 <= floor < 1.0" in out
    assert main(["plugins", "--json", "--kind", "analyzer"]) == 0
    listed = {c["name"]: c["params"] for c in json.loads(capsys.readouterr().out)["components"]}
    assert listed["dse"]["base"] == {"default": 2.0, "min": 1.0, "exclusive_min": True, "range": "1.0 < base",
                                     "help": "logarithm base of the entropy (2: bits, as the reference)"}
    assert isinstance(plugin.overtone_analyzers()[0].params["n_keys"], Param)
