"""The host's checks where a plugin's product enters it: one line naming component and plugin."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from overtone import Component, PluginError
from overtone.contract import describe, expect_attributes, expect_callable, expect_dataset, label


@pytest.fixture
def entry(example_registry):
    return example_registry.entry("analyzer", "moments")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"mean": 1.0}, "returned a dict; expected an xarray.Dataset (build one with xr.Dataset(result))"),
        (xr.DataArray([1.0], dims="x"), "returned an xarray.DataArray; expected an xarray.Dataset "
                                        "(wrap it: result.to_dataset(name='...'))"),
        (3, "returned an int (3); expected an xarray.Dataset"),
        (None, "returned None; expected an xarray.Dataset (does the function end without a return "
               "statement?)"),
    ],
)
def test_expect_dataset_names_component_plugin_value_and_expectation(entry, value, message):
    with pytest.raises(PluginError) as info:
        expect_dataset(value, entry)
    assert str(info.value) == f"analyzer 'moments' (plugin 'overtone_example.plugin') {message}"


def test_good_products_pass_through(entry):
    ds = xr.Dataset({"a": ("x", np.arange(3.0))})
    assert expect_dataset(ds, entry) is ds
    assert expect_callable(len, entry) is len


def test_other_checks_and_labels():
    component = Component("signal_processor", "demean", "math:sqrt")
    assert label(component) == "signal processor 'demean'"
    assert label("reader 'fits'") == "reader 'fits'"
    assert describe(lambda x: x) == "a lambda" and describe("x" * 50).endswith("...)")
    with pytest.raises(PluginError) as info:
        expect_callable(None, component)
    assert str(info.value) == ("signal processor 'demean' factory returned None; expected a callable "
                               "(xr.Dataset) -> xr.Dataset (does the function end without a return statement?)")
    with pytest.raises(PluginError) as info:
        expect_dataset([1, 2], "reader 'csv' (plugin 'p')", action="opened 'a.csv' as")
    assert str(info.value) == "reader 'csv' (plugin 'p') opened 'a.csv' as a list; expected an xarray.Dataset"
    engine = Component("engine", "e", "math:sqrt")
    with pytest.raises(PluginError) as info:
        expect_attributes(object(), engine, ("resolve", "run"), "an engine (see docs/hooks.md)")
    assert str(info.value) == ("engine 'e' factory returned an object without resolve(), run(); "
                               "expected an engine (see docs/hooks.md)")
