"""The plugin's tests, with overtone's public testing kit (overtone.testing)."""

import numpy as np
import pytest
import xarray as xr
from overtone import ConfigError
from overtone.runs import run_config
from overtone.testing import check_analyzer, check_plugin, check_signal_processor, registry_for
from overtone_example import plugin

registry = registry_for(plugin)  # holds just this plugin's components


def test_contract():
    # kinds, unique names, defaults within their own bounds, factories import and accept
    # every declared parameter
    assert {c.name for c in check_plugin(plugin)} == {"linreg", "moments", "demean"}


def test_analyzer():
    losses = np.array([4.0, 2.0, 1.0, 1.0])
    ds = xr.Dataset({"train_loss": ("step", losses)}, coords={"step": np.arange(4)})
    result = check_analyzer(registry.get("analyzer", "moments"), ds)
    np.testing.assert_allclose([result["mean"], result["std"]], [losses.mean(), losses.std()])


def test_signal_processor():
    ds = xr.Dataset({"spectra": (("time", "frequency"), np.arange(8.0).reshape(2, 4), {"units": "K"})},
                    coords={"frequency": [1.0, 2.0, 3.0, 4.0]})
    out = check_signal_processor(registry.get("signal_processor", "demean"), ds)
    np.testing.assert_allclose(out["spectra"].mean("frequency"), 0.0, atol=1e-12)
    import overtone
    from overtone.runschema import history_entries

    done = overtone.process(ds, ["demean"], registry=registry)
    step = history_entries(done.dataset)[0]
    assert (step["component"], step["plugin"], step["params"]) == ("demean", plugin.__name__,
                                                                  {"variable": "spectra"})


def test_engine_fits_least_squares(tmp_path):
    run_dir = run_config({"run": {"engine": "linreg"}, "train": {"steps": 200, "checkpoint_every": 50}},
                         source="test", default_name="t", out=tmp_path, registry=registry)
    with xr.open_dataset(run_dir / "metrics.nc") as metrics:
        losses = metrics["train_loss"].values
    # noise 0.1: the mean squared residual at the least-squares optimum is about 0.01
    assert losses[0] > 1.0 and losses[-1] == pytest.approx(0.01, abs=0.01)


def test_engine_bounds_come_from_params(tmp_path):
    with pytest.raises(ConfigError) as info:
        run_config({"run": {"engine": "linreg"}, "train": {"steps": 0}}, source="exp.toml",
                   default_name="t", out=tmp_path, registry=registry)
    assert str(info.value) == "exp.toml [train]: steps = 0 is below the minimum 1; allowed: 1 <= steps"
