"""Mistakes a plugin author makes, each reported as one line naming the problem and the fix."""

from __future__ import annotations

import numpy as np
import overtone
import pytest
import xarray as xr
from overtone import Component, DatasetError, Param, PluginError
from overtone.plugins import load_plugins
from overtone.registry import Registry
from overtone_core_testing import FakeDist, FakeEntryPoint, make_plugin


def registry_of(**kwargs) -> Registry:
    return Registry(load_plugins(environ={}, **kwargs))


def one_plugin(fake_entry_points, **hooks) -> Registry:
    fake_entry_points.append(FakeEntryPoint("p", make_plugin("p", **hooks), FakeDist("overtone-p")))
    return registry_of()


class Smooth:
    """A processor class, registered by mistake where a Component is due."""

    def __call__(self, ds):
        return ds


def test_hook_without_return_is_a_problem_not_silence(fake_entry_points):
    reg = one_plugin(fake_entry_points, overtone_signal_processors=None)
    assert reg.problems == [
        "plugin 'overtone-p': overtone_signal_processors() returned None; expected a list "
        "of overtone.Component (does the function end without a return statement?)"
    ]


def test_single_component_or_class_from_a_hook(fake_entry_points):
    single = Component("signal_processor", "s", "math:sqrt")
    assert one_plugin(fake_entry_points, overtone_signal_processors=single).problems == [
        "plugin 'overtone-p': overtone_signal_processors() returned a single Component 's'; return a list of "
        "them: [Component(...)]"
    ]
    fake_entry_points.clear()
    problems = one_plugin(fake_entry_points, overtone_signal_processors=[Smooth]).problems
    assert problems == [
        f"plugin 'overtone-p': overtone_signal_processors() returned the class {__name__}.Smooth "
        f"in its list; expected overtone.Component('signal_processor', name, 'module:attr', ...)"
    ]


def test_param_default_of_the_wrong_type_is_reported_at_load(fake_entry_points):
    bad = Component(
        "signal_processor", "sg", "math:sqrt", params={"window": Param("101", min=5), "order": 3}
    )
    reg = one_plugin(fake_entry_points, overtone_signal_processors=[bad])
    assert reg.names("signal_processor") == ["sg"]  # still listed, so `overtone plugins` shows it
    assert reg.problems == [
        "plugin 'overtone-p': overtone_signal_processors(): signal processor 'sg': the default of 'window' fails "
        "its own Param: window = '101' is not a number; expected 5 <= window; fix the default or the Param's "
        "type/bounds"
    ]


def test_param_bound_that_is_not_a_number():
    with pytest.raises(
        ValueError, match=r"^Param: max='9' is a str; a bound must be a number \(max=9.0\)$"
    ):
        Param(5, max="9")


def spectra() -> xr.Dataset:
    freq = np.linspace(1400.0, 1430.0, 64)
    data = np.random.default_rng(0).normal(size=(3, 64))
    return xr.Dataset(
        {"spectrum": (("time", "frequency"), data)},
        coords={"time": np.arange(3), "frequency": ("frequency", freq, {"units": "MHz"})},
        attrs={"telescope": "fast"},
    )


def processor_registry(fake_entry_points, function) -> Registry:
    component = Component("signal_processor", "mine", lambda: function)
    return one_plugin(fake_entry_points, overtone_signal_processors=[component])


@pytest.mark.parametrize(
    "function, lost",
    [
        (lambda ds: ds.drop_vars("frequency"), "coordinate 'frequency'"),
        (lambda ds: ds.rename({"frequency": "freq"}), "dim 'frequency'"),
        (lambda ds: ds.drop_attrs(deep=False), "attribute 'telescope'"),
    ],
)
def test_processor_that_drops_structure_is_refused(fake_entry_points, tmp_path, function, lost):
    reg = processor_registry(fake_entry_points, function)
    with pytest.raises(PluginError) as info:
        overtone.process(spectra(), ["mine"], tmp_path / "out.nc", registry=reg)
    assert str(info.value) == (
        f"signal processor 'mine' (plugin 'overtone-p') dropped the input's {lost}; expected its dims, coords "
        f"and attrs kept (assign into ds.copy(), or xr.apply_ufunc(..., keep_attrs=True))"
    )
    assert not (tmp_path / "out.nc").exists()


def test_processor_may_transpose_or_decimate(fake_entry_points):
    reg = processor_registry(
        fake_entry_points, lambda ds: ds.isel(frequency=slice(None, None, 2)).transpose()
    )
    out = overtone.process(spectra(), ["mine"], registry=reg).dataset
    np.testing.assert_array_equal(out["frequency"].values, spectra()["frequency"].values[::2])


def all_nan(ds: xr.Dataset) -> xr.Dataset:
    return ds.copy().assign(spectrum=ds["spectrum"] * np.nan)


def test_processor_returning_all_nan_is_refused_in_memory(fake_entry_points):
    reg = processor_registry(fake_entry_points, all_nan)
    with pytest.raises(PluginError) as info:
        overtone.process(spectra(), ["mine"], registry=reg)
    assert str(info.value) == (
        "signal processor 'mine' (plugin 'overtone-p') returned 'spectrum' with no finite value (every "
        "value NaN or inf) although its input had finite ones; nothing was written: check the step's "
        "parameters or fix the plugin"
    )


def test_processor_returning_all_nan_from_a_file_writes_nothing(fake_entry_points, tmp_path):
    from overtone.io import write_dataset

    source = write_dataset(spectra(), tmp_path / "in.nc")
    out = tmp_path / "out.nc"
    out.write_bytes(b"earlier result")
    reg = processor_registry(fake_entry_points, all_nan)
    with pytest.raises(PluginError, match=r"^signal processor 'mine' .* returned 'spectrum' with no finite"):
        overtone.process(source, ["mine"], out, overwrite=True, chunks=1, registry=reg)
    assert out.read_bytes() == b"earlier result"  # the refused output replaced nothing
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.nc", "out.nc"]  # no temporary left


def test_a_lazy_result_without_an_output_is_not_computed(fake_entry_points):
    calls = []

    def counted(block):
        calls.append(block.shape)
        return block * np.nan

    def lazy_nan(ds):
        return ds.copy().assign(spectrum=ds["spectrum"].copy(data=ds["spectrum"].data.map_blocks(counted)))

    reg = processor_registry(fake_entry_points, lazy_nan)
    done = overtone.process(spectra().chunk({"time": 1}), ["mine"], registry=reg)
    assert (1, 64) not in calls  # no real block computed (dask probes its function on tiny ones)
    assert done.dataset["spectrum"].chunks is not None


def test_nan_input_is_not_the_processors_fault(fake_entry_points, tmp_path):
    data = spectra().assign(spectrum=lambda ds: ds["spectrum"] * np.nan)
    reg = processor_registry(fake_entry_points, lambda ds: ds.copy())
    done = overtone.process(data, ["mine"], tmp_path / "out.nc", registry=reg)
    assert done.output.exists() and bool(done.dataset["spectrum"].isnull().all())


def test_factory_returning_a_class_and_a_step_raising_valueerror(fake_entry_points):
    reg = processor_registry(fake_entry_points, Smooth)
    with pytest.raises(
        PluginError,
        match=r"^signal processor 'mine' \(plugin 'overtone-p'\) factory returned the "
        r"class Smooth; expected a callable taking a Dataset \(not an instance: "
        r"return Smooth\(\.\.\.\)\)$",
    ):
        overtone.process(spectra(), ["mine"], registry=reg)
    fake_entry_points.clear()

    def short(ds):
        raise ValueError("window_length must be less than or equal to the size of x")

    reg = processor_registry(fake_entry_points, short)
    with pytest.raises(DatasetError) as info:
        overtone.process(spectra(), ["mine"], registry=reg)
    assert str(info.value) == (
        "signal processor 'mine' (plugin 'overtone-p') refused its input: ValueError: "
        "window_length must be less than or equal to the size of x"
    )


def test_analyzer_result_netcdf_cannot_hold_is_one_line(fake_entry_points, tmp_path):
    def objects(ds):
        return xr.Dataset({"names": ("k", np.array([{"a": 1}, None], dtype=object))})

    good = Component("analyzer", "total", lambda: lambda ds: ds.sum())
    bad = Component("analyzer", "objects", lambda: objects)
    reg = one_plugin(fake_entry_points, overtone_analyzers=[good, bad])
    source = tmp_path / "data.nc"
    spectra().to_netcdf(source)
    done = overtone.analyze(source, ["objects", "total"], registry=reg)
    assert done.exit_code == 1 and list(done.results) == ["total"]
    assert (tmp_path / "data.total.nc").exists() and not (tmp_path / "data.objects.nc").exists()
    message = done.failures["objects"].message
    assert message.startswith(
        "analyzer 'objects' (plugin 'overtone-p') returned a Dataset that netCDF cannot "
        "hold (ValueError: "
    )
    assert message.endswith("); expected numeric, bool, string or datetime variables and attrs")
    assert "\n" not in message


def test_distribution_dot_name_finds_a_plugin_with_several_entry_points(fake_entry_points):
    """The docs' qualified id ``<distribution>.<name>`` works for a ``dist:entry-point`` plugin."""
    for point in ("clash", "other"):
        module = make_plugin(
            point, overtone_signal_processors=[Component("signal_processor", point, "math:sqrt")]
        )
        fake_entry_points.append(FakeEntryPoint(point, module, FakeDist("overtone-two")))
    reg = registry_of()
    assert {e.plugin for e in reg} == {"overtone-two:clash", "overtone-two:other"}
    assert reg.entry("signal_processor", "overtone-two.clash").plugin == "overtone-two:clash"
    assert reg.entry("signal_processor", "overtone-two:other.other").plugin == "overtone-two:other"


def test_cli_prints_a_shadowing_warning_as_one_line(tmp_path):
    import os

    from overtone_core_testing import run_cli

    pytest.importorskip("overtone_radio", reason="needs overtone-radio, whose 'smooth' is shadowed")
    (tmp_path / "shadow_smooth.py").write_text(
        "from overtone import Component, hookimpl\n\n\n@hookimpl\ndef overtone_signal_processors():\n"
        "    return [Component('signal_processor', 'smooth', 'overtone_example.components:Demean')]\n"
    )
    source = tmp_path / "obs.nc"
    spectra().to_netcdf(source)
    env = {
        "OVERTONE_PLUGINS": "overtone_radio.plugin,shadow_smooth",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
    }
    done = run_cli(
        "process", str(source), "--with", "smooth", "-o", str(tmp_path / "out.nc"), **env
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        "overtone: warning: signal processor 'smooth' is registered by 'overtone_radio.plugin.smooth' and "
        "'shadow_smooth.smooth'; using 'overtone_radio.plugin.smooth' (shipped with overtone); name "
        "'shadow_smooth.smooth' to use the other"
    ]


def test_misspelt_param_gets_a_suggestion(fake_entry_points):
    from overtone import ConfigError

    component = Component("signal_processor", "sg", "math:sqrt", params={"window": 101, "order": 3})
    reg = one_plugin(fake_entry_points, overtone_signal_processors=[component])
    with pytest.raises(ConfigError) as info:
        overtone.process(spectra(), ["sg"], params=["windo=51"], registry=reg)
    assert str(info.value) == (
        "--param 'windo=51': no step takes 'windo'; parameters: sg.order, sg.window (did you mean 'window'?)"
    )


def test_plugins_kind_is_repeatable():
    from overtone_core_testing import run_cli

    listing = run_cli("plugins", "--kind", "engine", "--kind", "analyzer").stdout.splitlines()[1:]
    assert sorted(line.split()[0] for line in listing) == ["analyzer", "engine"]


def test_analyzer_result_that_is_all_nan_is_warned_about(fake_entry_points):
    def nans(ds):
        return xr.Dataset(
            {"g": ("time", np.full(ds.sizes["time"], np.nan)), "n": ("time", np.arange(3.0))}
        )

    reg = one_plugin(
        fake_entry_points, overtone_analyzers=[Component("analyzer", "nans", lambda: nans)]
    )
    done = overtone.analyze(spectra(), ["nans"], write=False, registry=reg)
    assert done.exit_code == 0 and list(done.results) == ["nans"]
    assert done.warnings == [
        "analyzer 'nans' (plugin 'overtone-p'): result variable 'g' is NaN everywhere (written as it is); "
        "check the analyzer and the data it reads"
    ]


def test_lazy_factory_module_that_raises_on_import_is_one_line(tmp_path, monkeypatch):
    from overtone.errors import ComponentUnavailableError

    (tmp_path / "typo_dsp.py").write_text("import numpy as np\nWINDOW = np.arange(3).reshap(3)\n")
    (tmp_path / "unclosed_dsp.py").write_text("class Thing(\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ComponentUnavailableError) as info:
        Component("signal_processor", "typo", "typo_dsp:Thing").load()
    assert str(info.value) == (
        "signal_processor 'typo' cannot be used: importing 'typo_dsp' raised AttributeError: "
        "'numpy.ndarray' object has no attribute 'reshap' "
        f"(at {tmp_path / 'typo_dsp.py'}:2); fix the plugin's module"
    )
    with pytest.raises(
        ComponentUnavailableError, match=r"raised SyntaxError: .* \(at .*unclosed_dsp.py:1\); fix"
    ):
        Component("signal_processor", "unclosed", "unclosed_dsp:Thing").load()
