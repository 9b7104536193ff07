"""The plugin honours overtone's contract and its declared params match the factories."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys

import overtone_radio.plugin as plugin
from overtone.params import as_param
from overtone.testing import check_plugin


def test_contract_check_passes():
    names = {(c.kind, c.name) for c in check_plugin(plugin)}
    assert {("signal_processor", n) for n in ("fft-standing-wave", "sine-fit", "running-median",
                                              "harmonic-rfi", "rms-ratio")} <= names
    assert ("reader", "fits") in names


def test_declared_params_match_factory_signatures():
    for component in check_plugin(plugin):
        signature = inspect.signature(component.load())
        # readers also take the path and chunks, which are not config parameters
        accepted = {k: v.default for k, v in signature.parameters.items()
                    if k not in ("path", "chunks")}
        assert set(component.params) == set(accepted), component.name
        for key, spec in component.params.items():
            default = as_param(spec).default
            got = accepted[key]
            assert (list(map(list, got)) if key in ("windows_us", "protect_ranges_mhz") and got else
                    list(got) if isinstance(got, tuple) else got) == default, (component.name, key)


def test_listing_plugins_imports_no_numpy():
    """Only this plugin loaded (OVERTONE_LOAD_PLUGINS): listing it imports no numpy/xarray."""
    code = ("import sys, overtone; r = overtone.registry(); "
            "print(len(r.of_kind('signal_processor')), "
            "int(any(m in sys.modules for m in ('numpy', 'xarray', 'torch'))))")
    env = {**os.environ, "OVERTONE_LOAD_PLUGINS": "overtone-radio"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=env)
    assert out.stdout.split() == [str(len(plugin.overtone_signal_processors())), "0"]
