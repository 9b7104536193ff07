"""Bounds live on each analyzer's ``Param``: one check for a config, ``--param`` and ``create()``."""

from __future__ import annotations

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
    ("frequency-error", "n_frequencies"), ("frequency-error", "floor"),
    ("pca-structure", "n_components"), ("pca-structure", "top"),
    ("dse", "max_samples"), ("dsmi", "max_samples"), ("dsmi", "repetitions"), ("dsmi", "n_bins"),
    ("scaling-law", "n_starts"), ("scaling-law", "n_bootstrap"), ("condensation", "threshold"),
}


def bounded_params():
    """(component, key, Param, violating value, its message, the bound's value) per bound."""
    cases = []
    for component in check_plugin(plugin):
        for key, spec in component.params.items():
            param = as_param(spec)
            scalar = param.element() if param.is_list else param
            for side, bound in (("min", scalar.min), ("max", scalar.max)):
                if bound is None:
                    continue
                step = 1 if isinstance(bound, int) else 0.5
                bad = bound - step if side == "min" else bound + step
                name = f"{key}[0]" if param.is_list else key
                text = "below the minimum" if side == "min" else "above the maximum"
                message = f"{name} = {bad!r} is {text} {bound!r}; allowed: {scalar.describe_range(name)}"
                wrap = (lambda v: [v]) if param.is_list else (lambda v: v)
                cases.append((component, key, wrap(bad), message, wrap(bound)))
    return cases


CASES = bounded_params()
IDS = [f"{c.name}.{key}={bad}" for c, key, bad, _, _ in CASES]


def test_every_moved_check_is_declared():
    assert {(c.name, key) for c, key, *_ in CASES} >= BOUNDED


@pytest.mark.parametrize(("component", "key", "bad", "message", "edge"), CASES, ids=IDS)
def test_bound_violated_from_a_config_is_one_line(component, key, bad, message, edge):
    where = "exp.toml [[analyzers]] #1"
    with pytest.raises(ConfigError) as info:
        resolve_component(registry_for(plugin), "analyzer", {"name": component.name, key: bad}, where)
    assert str(info.value) == f"{where} (analyzer {component.name!r}): {message}"


@pytest.mark.filterwarnings("ignore:analyzer 'grokking-frequency' is renamed:FutureWarning")
@pytest.mark.parametrize(("component", "key", "bad", "message", "edge"), CASES, ids=IDS)
def test_bound_violated_from_create_is_one_line_and_the_bound_itself_is_accepted(
        component, key, bad, message, edge):
    with pytest.raises(ConfigError) as info:
        component.create(**{key: bad})
    assert str(info.value) == f"analyzer {component.name!r}: {message}"
    # the bound is inclusive, as the analyzer's own guard (kept for direct use) agrees
    assert callable(component.create(**{key: edge}))


def test_the_analyzers_own_guards_still_refuse_direct_use():
    from overtone_dynamics.diffusion import DSE, DSMI
    from overtone_dynamics.fourier import EmbeddingFourier
    from overtone_dynamics.spectrum import PCAStructure

    for make, text in ((lambda: DSE(max_samples=1), "max_samples = 1"),
                       (lambda: DSMI(n_bins=1), "n_bins >= 2"),
                       (lambda: EmbeddingFourier(p=2), "p = 2"),
                       (lambda: PCAStructure(top=0), "top must be at least 1")):
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
    assert isinstance(plugin.overtone_analyzers()[0].params["n_keys"], Param)
