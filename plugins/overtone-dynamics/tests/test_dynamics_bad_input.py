"""Bad input gives one clear DatasetError (or ConfigError), never a silent NaN result."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from overtone import ConfigError, DatasetError
from overtone.runschema import history_entries
from overtone_dynamics.diffusion import DSE, DSMI
from overtone_dynamics.fourier import EmbeddingFourier, GridErrorSpectrum
from overtone_dynamics.geometry import Condensation, NeuralCollapse
from overtone_dynamics.spectrum import EffectiveRank, PCAStructure

RNG = np.random.default_rng(7)


def representations(values=None) -> xr.Dataset:
    h = RNG.normal(size=(2, 30, 4)) if values is None else values
    return xr.Dataset({"hidden": (("step", "sample", "dim"), h),
                       "labels": ("sample", np.arange(30) % 3)}, coords={"step": [0, 10]})


CASES = {
    # name: (analyzer, valid dataset, variable name, dims of the variable without step)
    "embedding-fourier": (EmbeddingFourier(), lambda v=None: xr.Dataset(
        {"embeddings": (("step", "token", "dim"), RNG.normal(size=(2, 11, 4)) if v is None else v)}),
        "embeddings"),
    "grid-error-spectrum": (GridErrorSpectrum(op="+", output="probabilities"), lambda v=None: xr.Dataset(
        {"outputs": (("step", "a", "b", "class"), RNG.uniform(size=(2, 5, 5, 5)) if v is None else v)}),
        "outputs"),
    "pca-structure": (PCAStructure(), representations, "hidden"),
    "effective-rank": (EffectiveRank(), representations, "hidden"),
    "dse": (DSE(), representations, "hidden"),
    "dsmi": (DSMI(), representations, "hidden"),
    "neural-collapse": (NeuralCollapse(), representations, "hidden"),
    "condensation": (Condensation(), lambda v=None: xr.Dataset(
        {"weight_fc": (("step", "out", "in"), RNG.normal(size=(2, 6, 4)) if v is None else v)}),
        "weight_fc"),
}


@pytest.mark.parametrize("name", CASES)
def test_valid_input_gives_finite_results(name):
    analyzer, make, _ = CASES[name]
    result = analyzer(make())
    entry = history_entries(result)[-1]  # provenance: the run schema's history convention
    assert (entry["component"], entry["kind"], entry["plugin"]) == (name, "analyzer", "overtone-dynamics")
    for var in result.data_vars.values():
        assert np.all(np.isfinite(var.values)), var.name
        assert "units" in var.attrs, var.name


@pytest.mark.parametrize("name", CASES)
def test_wrong_dims(name):
    analyzer, make, var = CASES[name]
    ds = make()
    extra = ds[var].expand_dims(extra=2, axis=1)
    with pytest.raises(DatasetError, match="expected"):
        analyzer(ds.drop_vars(var).assign({var: extra}))
    with pytest.raises(DatasetError, match="expected"):
        analyzer(ds.assign({var: ds[var].isel({ds[var].dims[-1]: 0})}))


@pytest.mark.parametrize("name", CASES)
def test_nan(name):
    analyzer, make, var = CASES[name]
    ds = make()
    values = ds[var].values.copy()
    values.flat[3] = np.nan
    with pytest.raises(DatasetError, match="NaN"):
        analyzer(ds.assign({var: (ds[var].dims, values)}))


@pytest.mark.parametrize("name", ["embedding-fourier", "pca-structure", "effective-rank",
                                  "neural-collapse", "condensation"])
def test_constant_data_is_an_error_where_the_quantity_is_undefined(name):
    analyzer, make, var = CASES[name]
    ds = make()
    # constant zero weights / zero-variance features / a constant embedding
    with pytest.raises(DatasetError, match="constant|zero|same mean"):
        analyzer(ds.assign({var: (ds[var].dims, np.zeros(ds[var].shape))}))


def test_constant_representations_have_zero_dse_not_nan():
    # DSE is defined there: one eigenvalue 1, the rest 0 (documented); DSMI follows
    ds = representations(np.ones((2, 30, 4)))
    np.testing.assert_allclose(DSE()(ds)["dse"].values, 0.0, atol=1e-12)
    np.testing.assert_allclose(DSMI()(ds)["dsmi"].values, 0.0, atol=1e-12)


def test_missing_variables_and_params():
    with pytest.raises(DatasetError, match="set variable="):
        DSE()(xr.Dataset({"other": ("x", [1.0, 2.0])}))
    with pytest.raises(DatasetError, match="no variable 'nope'"):
        PCAStructure(variable="nope")(representations())
    with pytest.raises(DatasetError, match="labels="):
        DSMI(labels="classes")(representations())
    with pytest.raises(DatasetError, match="output='probabilities'"):
        GridErrorSpectrum(op="+")(CASES["grid-error-spectrum"][1]())
    with pytest.raises(DatasetError, match="set op="):
        GridErrorSpectrum(output="scores")(CASES["grid-error-spectrum"][1]())
    with pytest.raises(DatasetError, match="p = 20"):
        EmbeddingFourier(p=20)(CASES["embedding-fourier"][1]())
    with pytest.raises(DatasetError, match="single value"):
        DSMI()(representations().assign(labels=("sample", np.zeros(30, int))))
    with pytest.raises(ConfigError, match="sigma"):
        DSE(sigma=0.0)
    with pytest.raises(ConfigError, match="method"):
        DSE(method="fast")


def test_steps_where_a_probe_was_not_recorded_are_skipped():
    # probes.nc aligns probes on one step dim: a probe taken every 2nd step is NaN in between
    h = RNG.normal(size=(4, 30, 4))
    h[[1, 3]] = np.nan
    ds = xr.Dataset({"hidden": (("step", "sample", "dim"), h), "labels": ("sample", np.arange(30) % 3),
                     "weight_head": (("step", "class", "dim"), RNG.normal(size=(4, 3, 4)))},
                    coords={"step": [0, 100, 200, 300]})
    for analyzer in (PCAStructure(), EffectiveRank(), DSE(),
                     NeuralCollapse(weight_variable="weight_head")):
        result = analyzer(ds)
        assert result["step"].values.tolist() == [0, 200], analyzer.name
    reference = NeuralCollapse(weight_variable="weight_head")(ds.isel(step=[0, 2]))
    np.testing.assert_allclose(NeuralCollapse(weight_variable="weight_head")(ds)["nc3"].values,
                               reference["nc3"].values)
    h[:] = np.nan
    with pytest.raises(DatasetError, match="NaN at every step"):
        DSE()(ds.assign(hidden=(("step", "sample", "dim"), h)))
