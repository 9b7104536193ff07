"""The plugin honours overtone's contract; every analyzer has a plot and accurate params."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys

import overtone
import overtone_dynamics.plugin as plugin
import pytest
from overtone.testing import check_plugin


def test_contract_check_passes():
    names = {c.name for c in check_plugin(plugin)}
    assert names == {"embedding-fourier", "grokking-frequency", "pca-structure", "effective-rank",
                     "dse", "dsmi", "scaling-law", "condensation", "neural-collapse",
                     "progress-measures", "grid-error-spectrum", "frequency-error", "weight-density"}


@pytest.mark.filterwarnings("ignore:analyzer 'grokking-frequency' is renamed:FutureWarning")
def test_declared_params_match_each_factory_signature_and_defaults():
    for component in check_plugin(plugin):
        factory = component.load()
        signature = inspect.signature(factory)
        accepted = {k: v.default for k, v in signature.parameters.items()}
        assert set(component.params) == set(accepted), component.name
        for key, spec in component.params.items():
            default = spec.default if isinstance(spec, overtone.Param) else spec
            assert default == accepted[key], (component.name, key)
        assert callable(getattr(factory(), "plot", None)), component.name


def test_listing_imports_no_numerics():
    # only this distribution is loaded: other plugins' imports are their own business
    code = ("import sys, overtone; reg = overtone.registry(); "
            "assert any(e.component.name == 'dse' for e in reg), 'plugin not loaded'; "
            "bad = [m for m in ('torch', 'scipy', 'overtone_dynamics.diffusion', "
            "'overtone_dynamics.scaling') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    env = {**os.environ, "OVERTONE_LOAD_PLUGINS": "overtone-dynamics"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stdout + done.stderr


def test_registry_finds_the_installed_plugin():
    assert overtone.registry().get("analyzer", "dse").name == "dse"
