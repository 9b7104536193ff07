"""overtone.process and overtone.analyze: the library the CLI calls, with a test plugin."""

from __future__ import annotations

import lib_api_plugin
import numpy as np
import pytest
import xarray as xr
from overtone import ConfigError, DatasetError, OvertoneError
from overtone.io import open_dataset, read_groups, write_dataset


@pytest.fixture
def reg():
    from overtone.plugins import load_plugins
    from overtone.registry import Registry

    lib_api_plugin.PLOTS.clear()
    return Registry(load_plugins(use_entry_points=False, modules=["lib_api_plugin"]))


@pytest.fixture
def spectra():
    rng = np.random.default_rng(7)
    data = rng.normal(100.0, 1.0, size=(6, 32))
    return xr.Dataset({"spectra": (("time", "frequency"), data, {"units": "K"})},
                      coords={"time": np.arange(6.0), "frequency": np.linspace(1000, 1010, 32)})


def test_api_is_exported_lazily():
    import overtone
    from overtone.analysis import analyze
    from overtone.processing import process
    from overtone.runs import run_experiment

    assert overtone.process is process and overtone.analyze is analyze
    assert overtone.run is run_experiment
    assert {"process", "analyze", "run"} <= set(overtone.__all__) & set(dir(overtone))
    from overtone import analyze as imported

    assert imported is analyze


def test_each_step_plots_its_own_input_and_output(tmp_path, reg, spectra):
    """Two steps: the first removes a 100 K offset; the second step's "before" is the first
    step's output, not the pipeline's input, and its "after" is the final output."""
    import overtone

    x = spectra["spectra"].values
    done = overtone.process(spectra, ["remove-offset", ("scale", {"factor": 3.0})], tmp_path / "o.nc",
                            plots=tmp_path / "p.png", registry=reg)
    (first, b1, a1), (second, b2, a2) = lib_api_plugin.PLOTS
    assert (first, second) == ("remove-offset", "scale")
    np.testing.assert_array_equal(b1, x)
    np.testing.assert_array_equal(a1, x - 100.0)
    np.testing.assert_array_equal(b2, x - 100.0)
    np.testing.assert_array_equal(a2, (x - 100.0) * 3.0)
    assert done.plots == {"remove-offset": tmp_path / "p.remove-offset.png",
                          "scale": tmp_path / "p.scale.png"}
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in done.plots.values())
    np.testing.assert_array_equal(done.dataset["spectra"].values, (x - 100.0) * 3.0)
    assert "remove-offset(offset=100.0) | scale(factor=3.0)" in done.dataset.attrs["history"]
    from overtone.runschema import history_entries

    entries = history_entries(done.dataset)
    assert [(e["component"], e.get("kind"), e.get("plugin"), e["params"]) for e in entries[-3:]] == [
        ("remove-offset", "signal_processor", "lib_api_plugin", {"offset": 100.0}),
        ("scale", "signal_processor", "lib_api_plugin", {"factor": 3.0}),
        ("overtone process", None, None, {})]


def test_steps_as_names_pairs_and_callables(tmp_path, reg, spectra):
    import overtone

    x = spectra["spectra"].values
    halve = lib_api_plugin.Scale(0.5)
    done = overtone.process(spectra, ["remove-offset", halve], registry=reg)
    assert done.output is None and not done.plots
    np.testing.assert_array_equal(done.dataset["spectra"].values, (x - 100.0) * 0.5)
    assert "remove-offset(offset=100.0) | Scale(<callable>)" in done.dataset.attrs["history"]
    by_text = overtone.process(spectra, "remove-offset,scale", params=["scale.factor=4"], registry=reg)
    np.testing.assert_array_equal(by_text.dataset["spectra"].values, (x - 100.0) * 4.0)
    with pytest.raises(ConfigError, match="'Scale' is a callable given directly; build it with"):
        overtone.process(spectra, [halve], params=["Scale.factor=3"], registry=reg)
    with pytest.raises(ConfigError, match="pass an instance"):
        overtone.process(spectra, [lib_api_plugin.Scale], registry=reg)
    with pytest.raises(ConfigError, match=r"scale.*factor = 'x' has type str"):
        overtone.process(spectra, [("scale", {"factor": "x"})], registry=reg)


def test_a_step_returning_no_dataset_is_named_with_its_plugin(reg, spectra):
    import overtone

    with pytest.raises(OvertoneError) as info:
        overtone.process(spectra, ["remove-offset", lambda ds: ds["spectra"]], registry=reg)
    assert str(info.value) == ("signal processor '<lambda>' (a callable given directly) returned "
                               "an xarray.DataArray; expected an xarray.Dataset "
                               "(wrap it: result.to_dataset(name='...'))")


def test_existing_output_refused_unless_overwrite(tmp_path, reg, spectra):
    import overtone

    out = tmp_path / "clean.nc"
    overtone.process(spectra, ["remove-offset"], out, registry=reg)
    before, stamp = out.read_bytes(), out.stat().st_mtime_ns
    with pytest.raises(OvertoneError) as info:
        overtone.process(spectra, ["scale"], out, registry=reg)
    assert str(info.value) == (f"output {str(out)!r} already exists; pass --overwrite "
                               "(overwrite=True) to replace it")
    assert out.read_bytes() == before and out.stat().st_mtime_ns == stamp
    overtone.process(spectra, ["scale"], out, overwrite=True, registry=reg)
    with open_dataset(out) as ds:
        np.testing.assert_array_equal(ds["spectra"].values, spectra["spectra"].values * 2.0)
    store = tmp_path / "clean.zarr"
    overtone.process(spectra, ["remove-offset"], store, registry=reg)
    with pytest.raises(OvertoneError, match="already exists; pass --overwrite"):
        overtone.process(spectra, ["scale"], store, registry=reg)
    overtone.process(spectra, ["scale"], store, overwrite=True, registry=reg)
    with open_dataset(store) as ds:
        np.testing.assert_array_equal(ds["spectra"].values, spectra["spectra"].values * 2.0)


def test_data_without_the_chunk_dim_is_one_chunk(tmp_path, reg):
    """A single spectrum (no time) and a cube (ra, dec, frequency) go through without naming
    a chunk dim; a chunk dim named explicitly must exist."""
    import overtone

    rng = np.random.default_rng(2)
    one = write_dataset(xr.Dataset({"spectra": ("frequency", rng.normal(size=64))}), tmp_path / "one.nc")
    cube_values = rng.normal(size=(3, 4, 16))
    cube = write_dataset(xr.Dataset({"spectra": (("ra", "dec", "frequency"), cube_values)}),
                         tmp_path / "cube.nc")
    done = overtone.process(one, ["remove-offset"], tmp_path / "one-out.nc", registry=reg)
    with open_dataset(one) as src:
        np.testing.assert_array_equal(done.dataset["spectra"].values, src["spectra"].values - 100.0)
    done = overtone.process(cube, ["scale"], tmp_path / "cube-out.nc", registry=reg)
    np.testing.assert_array_equal(done.dataset["spectra"].values, cube_values * 2.0)
    by_ra = overtone.process(cube, ["scale"], chunk_dim="ra", chunks=1, registry=reg).dataset
    assert by_ra["spectra"].chunks[0] == (1, 1, 1)
    np.testing.assert_array_equal(by_ra["spectra"].values, cube_values * 2.0)
    with pytest.raises(OvertoneError, match=r"--chunk-dim 'time' is not a dimension of the input; dims: frequency"):
        overtone.process(one, ["scale"], chunk_dim="time", registry=reg)
    with pytest.raises(DatasetError, match="one.nc has no dimension 'time' to join along"):
        overtone.process([cube, one], ["scale"], registry=reg)


def _probes(run_dir):
    """Probes on two schedules: embeddings at steps 0 and 100, hidden at 0 and 200."""
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(3, 5, 4))
    emb[2] = np.nan
    hidden = rng.normal(size=(3, 6, 4))
    hidden[1] = np.nan
    ds = xr.Dataset({"embeddings": (("step", "token", "dim"), emb),
                     "hidden": (("step", "sample", "feature"), hidden),
                     "labels": ("sample", np.arange(6) % 2)}, coords={"step": [0, 100, 200]})
    run_dir.mkdir()
    write_dataset(ds, run_dir / "probes.nc")
    return ds


def test_analyzers_get_the_steps_their_variable_was_recorded_at(tmp_path, reg):
    import overtone

    _probes(tmp_path / "run")
    done = overtone.analyze(tmp_path / "run", ["seen", ("seen", {"variable": "embeddings"}),
                                               ("seen", {"variable": "hidden"})], registry=reg)
    assert done.ok and done.exit_code == 0
    seen = {k: (r["steps"].values.tolist(), r.attrs["variables"]) for k, r in done.results.items()}
    assert seen == {"seen-1": ([0], "embeddings,hidden,labels"),
                    "seen-2": ([0, 100], "embeddings,labels"),
                    "seen-3": ([0, 200], "hidden,labels")}
    groups = read_groups(tmp_path / "run" / "analysis.nc")
    assert set(groups) == {"seen-1", "seen-2", "seen-3"}
    assert groups["seen-3"]["steps"].values.tolist() == [0, 200]


def test_analyzer_failures_are_isolated_one_line_each(tmp_path, reg):
    import overtone

    _probes(tmp_path / "run")
    done = overtone.analyze(tmp_path / "run", ["boom", "as-dict", "seen", "as-da", "as-int"],
                            plots=tmp_path / "p.png", registry=reg)
    plugin = "(plugin 'lib_api_plugin')"
    assert {k: f.message for k, f in done.failures.items()} == {
        "boom": f"analyzer 'boom' {plugin} raised RuntimeError: kaput; expected it to return an xarray.Dataset",
        "as-dict": f"analyzer 'as-dict' {plugin} returned a dict; expected an xarray.Dataset "
                   "(build one with xr.Dataset(result))",
        "as-da": f"analyzer 'as-da' {plugin} returned an xarray.DataArray; expected an xarray.Dataset "
                 "(wrap it: result.to_dataset(name='...'))",
        "as-int": f"analyzer 'as-int' {plugin} returned an int (3); expected an xarray.Dataset",
    }
    assert all(f.plugin == "lib_api_plugin" and f.broke_contract for f in done.failures.values())
    assert done.exit_code == 1 and not done.ok
    assert set(read_groups(tmp_path / "run" / "analysis.nc")) == {"seen"}
    built = overtone.analyze(tmp_path / "run", ["no-build", "not-callable", "seen"], overwrite=True,
                             registry=reg)
    assert [f.message for f in built.failures.values()] == [
        f"analyzer 'no-build' {plugin}: its factory raised RuntimeError: cannot build",
        f"analyzer 'not-callable' {plugin} factory returned an int (42); expected a callable "
        "taking a Dataset",
    ]
    assert set(built.results) == {"seen"} and built.exit_code == 1
    plotted = overtone.analyze(tmp_path / "run", ["bad-plot", "seen"], overwrite=True, write=False,
                               plots=tmp_path / "q.png", registry=reg)
    assert {k: f.message for k, f in plotted.failures.items()} == {
        "bad-plot": f"analyzer 'bad-plot' {plugin}: its plot raised ValueError: no axes"}
    assert set(plotted.results) == {"bad-plot", "seen"} and plotted.exit_code == 1
    refused = overtone.analyze(tmp_path / "run", ["refuses", "seen"], overwrite=True, registry=reg)
    assert refused.exit_code == 2
    assert refused.failures["refuses"].message == "refuses: needs a 'weights' variable"


def test_analyze_a_dataset_and_a_file(tmp_path, reg):
    import overtone

    ds = _probes(tmp_path / "run")
    in_memory = overtone.analyze(ds, ["seen"], registry=reg)
    assert in_memory.written == {} and in_memory.results["seen"]["steps"].values.tolist() == [0, 100, 200]
    path = write_dataset(ds, tmp_path / "other.nc")
    done = overtone.analyze(path, "seen", registry=reg)
    assert done.written == {"seen": (tmp_path / "other.seen.nc", None)}
    with pytest.raises(OvertoneError, match="other.seen.nc' already exists; pass --overwrite"):
        overtone.analyze(path, "seen", registry=reg)
    with pytest.raises(OvertoneError, match="other.nc' is an input: overtone never overwrites its input"):
        overtone.analyze(path, "seen", output=path, overwrite=True, registry=reg)
    with pytest.raises(OvertoneError, match=r"output 'r.txt': write a .nc \(netCDF\) or .zarr path"):
        overtone.analyze(path, "seen", output="r.txt", registry=reg)
    out = overtone.analyze(path, "seen,seen", output=tmp_path / "r.nc", registry=reg)
    assert sorted(p.name for p, _ in out.written.values()) == ["r.seen-1.nc", "r.seen-2.nc"]
