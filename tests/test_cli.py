"""The overtone command line, run as a user would (subprocess), with the example plugin."""

from __future__ import annotations

import json
import os
import re
import sys

import numpy as np
import pytest
import xarray as xr
from overtone.io import open_dataset, read_groups, write_dataset
from overtone.runschema import history_entries
from overtone_core_testing import run_cli

CONFIG = """
[run]
name = "fit"
engine = "linreg"
seed = 3

[train]
steps = 40
checkpoint_every = 10
"""


def one_line_error(result) -> str:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("overtone: error: ")
    return lines[0].removeprefix("overtone: error: ")


def test_help_on_every_command():
    for command in ["plugins", "run", "demo", "sweep", "analyze", "process", "new-plugin", "doctor"]:
        result = run_cli(command, "--help")
        assert result.returncode == 0 and "usage: overtone " + command in result.stdout


def test_plugins_table_json_verbose():
    table = run_cli("plugins")
    assert table.returncode == 0
    assert re.search(r"^engine\s+linreg\s+overtone_example.plugin\s+least-squares", table.stdout, re.M)
    listing = json.loads(run_cli("plugins", "--json").stdout)
    names = {(c["kind"], c["name"]) for c in listing["components"]}
    assert names == {("engine", "linreg"), ("analyzer", "moments"), ("signal_processor", "demean")}
    assert listing["plugins"][0]["version"] == "1.0.0"
    verbose = run_cli("plugins", "--verbose", "--kind", "analyzer").stdout
    assert "variable = 'train_loss'  variable to summarise" in verbose and "linreg" not in verbose


def test_broken_plugin_reported_and_others_work():
    result = run_cli("plugins", "--json", OVERTONE_PLUGINS="overtone_example.plugin,no_such_plugin_mod")
    listing = json.loads(result.stdout)
    assert len(listing["components"]) == 3
    assert listing["problems"] == ["plugin 'no_such_plugin_mod': OVERTONE_PLUGINS names 'no_such_plugin_mod', which is "
                                   "not importable (No module named 'no_such_plugin_mod'); the module must be on "
                                   "PYTHONPATH or installed"]
    doctor = run_cli("doctor", OVERTONE_PLUGINS="overtone_example.plugin,no_such_plugin_mod")
    assert doctor.returncode == 1 and "1 problem(s) found" in doctor.stdout
    assert run_cli("doctor").returncode == 0


def test_run_writes_run_dir_and_resumes(tmp_path):
    config = tmp_path / "fit.toml"
    config.write_text(CONFIG)
    partial = run_cli("run", str(config), "--out", str(tmp_path / "runs"), "--set", "train.stop_at=25")
    assert partial.returncode == 0, partial.stderr
    run_dir = tmp_path / "runs" / "fit"
    saved = (run_dir / "config.toml").read_text()
    assert "stop_at = 25" in saved and "[versions]" in saved and "overtone_example.plugin" in saved
    again = run_cli("run", str(config), "--out", str(tmp_path / "runs"))
    assert one_line_error(again) == (
        f"run directory {str(run_dir)!r} already exists; pass --resume to continue it, "
        "or choose another with --out or --set run.name=NEW"
    )
    changed = run_cli("run", str(config), "--out", str(tmp_path / "runs"), "--resume", "--set", "train.stop_at=30")
    assert "the config differs from the saved one in train.stop_at" in one_line_error(changed)
    # the saved config is what a resume runs; here: finish without the stop
    (run_dir / "config.toml").write_text(saved.replace("stop_at = 25\n", ""))
    resumed = run_cli("run", str(config), "--out", str(tmp_path / "runs"), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    straight = run_cli("run", str(config), "--out", str(tmp_path / "straight"))
    with open_dataset(run_dir / "metrics.nc") as a, open_dataset(tmp_path / "straight" / "fit" / "metrics.nc") as b:
        assert a.sizes["step"] == 40
        np.testing.assert_array_equal(a["train_loss"].values, b["train_loss"].values)
    assert straight.returncode == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[run]\nengine = 'linreg'\n[train]\nsteps = 'ten'\n", "[train]: steps = 'ten' has type str; expected int"),
        ("[run]\nengine = 'linreg'\n[train]\nstpes = 10\n", "[train]: unknown key 'stpes'; allowed keys: checkpoint_every, lr, steps, stop_at (did you mean 'steps'?)"),
        ("[run]\nengine = 'torchh'\n", "[run] engine: no engine named 'torchh'; installed: linreg"),
        ("[run\n", "invalid TOML"),
    ],
)
def test_bad_config_exits_before_work(tmp_path, text, message):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    error = one_line_error(run_cli("run", str(config), "--out", str(tmp_path / "runs")))
    assert message in error and "bad.toml" in error
    assert not (tmp_path / "runs").exists()


def test_missing_config_file(tmp_path):
    error = one_line_error(run_cli("run", str(tmp_path / "nope.toml")))
    assert error == f"config file {str(tmp_path / 'nope.toml')!r} not found; check the path"


def test_demo_of_an_engine(tmp_path):
    result = run_cli("demo", "--engine", "linreg", "--out", str(tmp_path))
    assert result.returncode == 0 and "demo finished" in result.stdout
    assert (tmp_path / "demo" / "metrics.nc").exists()


def test_analyze_run_dir_and_file(tmp_path):
    config = tmp_path / "fit.toml"
    config.write_text(CONFIG)
    run_cli("run", str(config), "--out", str(tmp_path))
    result = run_cli("analyze", str(tmp_path / "fit"), "--with", "moments", "--input", "metrics",
                     "--plot", str(tmp_path / "m.png"))
    assert result.returncode == 0, result.stderr
    group = read_groups(tmp_path / "fit" / "analysis.nc")["moments"]
    with open_dataset(tmp_path / "fit" / "metrics.nc") as metrics:
        np.testing.assert_allclose(float(group["mean"]), float(metrics["train_loss"].mean()))
    assert (tmp_path / "m.png").read_bytes()[:4] == b"\x89PNG"
    file_result = run_cli("analyze", str(tmp_path / "fit" / "metrics.nc"), "--with", "moments", "--param", "dim=step")
    assert file_result.returncode == 0 and (tmp_path / "fit" / "metrics.moments.nc").exists()
    bad = run_cli("analyze", str(tmp_path / "fit"), "--with", "moments", "--param", "varible=x", "--input", "metrics")
    assert "no step takes 'varible'; parameters: moments.dim, moments.variable" in one_line_error(bad)
    again = run_cli("analyze", str(tmp_path / "fit"), "--with", "moments", "--input", "metrics")
    assert one_line_error(again) == (f"{str(tmp_path / 'fit' / 'analysis.nc')!r} already holds a group "
                                     "'moments'; pass --overwrite (overwrite=True) to replace it")
    missing_var = run_cli("analyze", str(tmp_path / "fit"), "--with", "moments", "--param", "variable=zzz",
                          "--input", "metrics", "--overwrite")
    assert one_line_error(missing_var) == "moments: no variable 'zzz'; have train_loss"
    # the refused and the failed analysis left the first result in place
    np.testing.assert_array_equal(read_groups(tmp_path / "fit" / "analysis.nc")["moments"]["mean"], group["mean"])


def test_process_pipeline(tmp_path):
    spectra = np.random.default_rng(0).normal(5.0, 1.0, size=(12, 16))
    src = write_dataset(xr.Dataset({"spectra": (("time", "frequency"), spectra, {"units": "K"})}), tmp_path / "in.nc")
    out = tmp_path / "out.zarr"
    result = run_cli("process", str(src), "--with", "demean", "-o", str(out), "--chunks", "5", "-q")
    assert result.returncode == 0, result.stderr
    with open_dataset(out) as ds:
        np.testing.assert_allclose(ds["spectra"].values, spectra - spectra.mean(1, keepdims=True))
        assert ds["spectra"].attrs["units"] == "K" and "demean(variable='spectra')" in ds.attrs["history"]
    same = run_cli("process", str(src), "--with", "demean", "-o", str(src))
    assert one_line_error(same) == (f"output {str(src)!r} is an input: overtone never overwrites its "
                                    "input; choose another output")
    unknown = run_cli("process", str(src), "--with", "fft", "-o", str(tmp_path / "x.nc"))
    assert one_line_error(unknown) == "no signal processor named 'fft'; installed: demean"
    unreadable = tmp_path / "broken.nc"
    unreadable.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 50)
    error = one_line_error(run_cli("process", str(unreadable), "--with", "demean", "-o", str(tmp_path / "y.nc")))
    assert error.startswith(f"cannot read {str(unreadable)!r} as a netCDF4/HDF5 file")
    assert not (tmp_path / "y.nc").exists()


def test_new_plugin_scaffold_passes_its_tests(tmp_path):
    import subprocess

    result = run_cli("new-plugin", "overtone-mine", "--kind", "analyzer", "--kind", "signal_processor",
                     "--kind", "engine", "--kind", "reader", "--directory", str(tmp_path))
    assert result.returncode == 0, result.stderr
    root = tmp_path / "overtone-mine"
    assert 'mine = "overtone_mine.plugin"' in (root / "pyproject.toml").read_text()
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(root)],
                           capture_output=True, text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "src"), os.environ.get("PYTHONPATH", "")])})
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "5 passed" in tests.stdout
    again = run_cli("new-plugin", "overtone-mine", "--directory", str(tmp_path))
    assert "already exists" in one_line_error(again)
    assert "--kind 'lose': choose from analyzer" in one_line_error(run_cli("new-plugin", "x", "--kind", "lose", "--directory", str(tmp_path)))


def test_process_on_a_dask_cluster_matches_in_memory(tmp_path):
    from dask.distributed import LocalCluster

    spectra = np.random.default_rng(1).normal(size=(10, 8))
    src = write_dataset(xr.Dataset({"spectra": (("time", "frequency"), spectra)}), tmp_path / "in.nc")
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        result = run_cli("process", str(src), "--with", "demean", "-o", str(tmp_path / "d.nc"),
                         "--chunks", "3", "--scheduler", cluster.scheduler_address)
    assert result.returncode == 0, result.stderr
    run_cli("process", str(src), "--with", "demean", "-o", str(tmp_path / "m.nc"), "-q")
    with open_dataset(tmp_path / "d.nc") as a, open_dataset(tmp_path / "m.nc") as b:
        np.testing.assert_array_equal(a["spectra"].values, b["spectra"].values)


def test_process_joins_several_inputs_along_time(tmp_path):
    """The pieces of one observation (obs_0001.nc, obs_0002.nc, ...) are joined along the
    chunk dim in the order given and processed as one; pieces whose frequency axis or
    time-independent variables differ are refused, naming the file, and nothing is written."""
    rng = np.random.default_rng(3)
    spectra = rng.normal(5.0, 1.0, size=(11, 16))
    freq = {"frequency": ("frequency", np.arange(16.0), {"units": "MHz"})}
    flag = ("frequency", np.arange(16) % 5 == 0)
    pieces = []
    for i, rows in enumerate((slice(0, 4), slice(4, 9), slice(9, 11))):
        ds = xr.Dataset({"spectra": (("time", "frequency"), spectra[rows]), "flag": flag},
                        coords={"time": np.arange(11.0)[rows], **freq})
        pieces.append(str(write_dataset(ds, tmp_path / f"obs_{i + 1:04d}.nc")))
    whole = write_dataset(xr.Dataset({"spectra": (("time", "frequency"), spectra), "flag": flag},
                                     coords={"time": np.arange(11.0), **freq}), tmp_path / "whole.nc")
    for inputs, out in ((pieces, "joined.nc"), ([str(whole)], "single.nc")):
        result = run_cli("process", *inputs, "--with", "demean", "-o", str(tmp_path / out), "--chunks", "3", "-q")
        assert result.returncode == 0, result.stderr
    with open_dataset(tmp_path / "joined.nc") as a, open_dataset(tmp_path / "single.nc") as b:
        np.testing.assert_array_equal(a["spectra"].values, b["spectra"].values)
        np.testing.assert_array_equal(a["time"].values, np.arange(11.0))
        assert a["flag"].dims == ("frequency",)
        run = history_entries(a)[-1]
        assert run["component"] == "overtone process" and run["steps"].startswith("demean(")
        assert run["inputs"] == "obs_0001.nc obs_0002.nc obs_0003.nc"
    shifted = xr.Dataset({"spectra": (("time", "frequency"), spectra[:2]), "flag": flag},
                         coords={"time": [20.0, 21.0], "frequency": ("frequency", np.arange(16.0) + 0.5)})
    odd = str(write_dataset(shifted, tmp_path / "obs_0009.nc"))
    error = one_line_error(run_cli("process", pieces[0], odd, "--with", "demean", "-o", str(tmp_path / "z.nc")))
    assert error == ("obs_0009.nc: its 'frequency' coordinate differs from obs_0001.nc's; only files "
                     "with the same 'frequency' join into one dataset: process them separately")
    reflagged = shifted.assign_coords(frequency=np.arange(16.0)).assign(flag=("frequency", np.zeros(16, bool)))
    other = str(write_dataset(reflagged, tmp_path / "obs_0010.nc"))
    error = one_line_error(run_cli("process", pieces[0], other, "--with", "demean", "-o", str(tmp_path / "z.nc")))
    assert error == "obs_0010.nc: 'flag' (which has no 'time' dim) differs from obs_0001.nc's; process the files separately"
    assert not (tmp_path / "z.nc").exists()
    same = one_line_error(run_cli("process", pieces[0], pieces[1], "--with", "demean", "-o", pieces[1]))
    assert same == f"output {pieces[1]!r} is an input: overtone never overwrites its input; choose another output"


def test_process_refuses_an_existing_output_unless_overwrite(tmp_path):
    spectra = np.random.default_rng(4).normal(3.0, 1.0, size=(5, 8))
    src = write_dataset(xr.Dataset({"spectra": (("time", "frequency"), spectra)}), tmp_path / "in.nc")
    out = tmp_path / "out.nc"
    out.write_bytes(b"an existing file")
    refused = run_cli("process", str(src), "--with", "demean", "-o", str(out))
    assert one_line_error(refused) == (f"output {str(out)!r} already exists; pass --overwrite "
                                       "(overwrite=True) to replace it")
    assert out.read_bytes() == b"an existing file"
    replaced = run_cli("process", str(src), "--with", "demean", "-o", str(out), "--overwrite", "-q")
    assert replaced.returncode == 0, replaced.stderr
    with open_dataset(out) as ds:
        np.testing.assert_allclose(ds["spectra"].values, spectra - spectra.mean(1, keepdims=True))


def test_process_a_single_spectrum_and_a_cube_without_time(tmp_path):
    rng = np.random.default_rng(5)
    one = rng.normal(size=32)
    cube = rng.normal(size=(2, 3, 16))
    src1 = write_dataset(xr.Dataset({"spectra": ("frequency", one)}), tmp_path / "one.nc")
    src3 = write_dataset(xr.Dataset({"spectra": (("ra", "dec", "frequency"), cube)}), tmp_path / "cube.nc")
    for src in (src1, src3):
        result = run_cli("process", str(src), "--with", "demean", "-o", str(tmp_path / f"o-{src.name}"), "-q")
        assert result.returncode == 0, result.stderr
    with open_dataset(tmp_path / "o-one.nc") as a, open_dataset(tmp_path / "o-cube.nc") as b:
        np.testing.assert_allclose(a["spectra"].values, one - one.mean())
        np.testing.assert_allclose(b["spectra"].values, cube - cube.mean(-1, keepdims=True))
    named = run_cli("process", str(src1), "--with", "demean", "-o", str(tmp_path / "x.nc"), "--chunk-dim", "time")
    assert one_line_error(named) == "--chunk-dim 'time' is not a dimension of the input; dims: frequency"
    help_text = run_cli("process", "--help").stdout
    assert "processed as one chunk" in " ".join(help_text.split())


def _with_test_plugin(tmp_path):
    from overtone_core_testing import HERE, cli_env

    return {"OVERTONE_PLUGINS": "overtone_example.plugin,lib_api_plugin",
            "PYTHONPATH": f"{HERE}:{cli_env()['PYTHONPATH']}"}


def test_analyze_keeps_going_past_broken_analyzers(tmp_path):
    """Each broken analyzer is one stderr line naming it and its plugin; the good result is
    written; exit 1 (a plugin broke its contract), 2 when analyzers only refused their input."""
    probes = xr.Dataset({"hidden": (("step", "sample"), np.ones((2, 3)))}, coords={"step": [0, 1]})
    (tmp_path / "run").mkdir()
    write_dataset(probes, tmp_path / "run" / "probes.nc")
    env = _with_test_plugin(tmp_path)
    result = run_cli("analyze", str(tmp_path / "run"), "--with", "boom,seen,as-dict,as-da,as-int", **env)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "overtone: error: analyzer 'boom' (plugin 'lib_api_plugin') raised RuntimeError: kaput; "
        "expected it to return an xarray.Dataset",
        "overtone: error: analyzer 'as-dict' (plugin 'lib_api_plugin') returned a dict; "
        "expected an xarray.Dataset (build one with xr.Dataset(result))",
        "overtone: error: analyzer 'as-da' (plugin 'lib_api_plugin') returned an xarray.DataArray; "
        "expected an xarray.Dataset (wrap it: result.to_dataset(name='...'))",
        "overtone: error: analyzer 'as-int' (plugin 'lib_api_plugin') returned an int (3); "
        "expected an xarray.Dataset",
    ]
    assert "seen: wrote" in result.stdout
    assert read_groups(tmp_path / "run" / "analysis.nc")["seen"]["steps"].values.tolist() == [0, 1]
    refused = run_cli("analyze", str(tmp_path / "run"), "--with", "refuses", **env)
    assert one_line_error(refused) == "refuses: needs a 'weights' variable"


def test_debug_flag_sets_overtone_debug_and_is_documented(monkeypatch, capsys):
    import os

    from overtone.cli import main

    monkeypatch.setenv("OVERTONE_DEBUG", "")
    monkeypatch.delenv("OVERTONE_DEBUG")
    assert main(["--debug", "plugins", "--json"]) == 0
    assert os.environ["OVERTONE_DEBUG"] == "1"
    monkeypatch.delenv("OVERTONE_DEBUG")
    assert main(["plugins", "--json", "--debug"]) == 0  # after the command as well
    assert os.environ["OVERTONE_DEBUG"] == "1"
    monkeypatch.delenv("OVERTONE_DEBUG")
    assert main(["plugins", "--json"]) == 0 and "OVERTONE_DEBUG" not in os.environ
    top = run_cli("--help").stdout
    assert "--debug" in top and "OVERTONE_DEBUG=1" in top and "141" in top


def test_a_closed_stdout_pipe_ends_quietly(tmp_path):
    """'overtone plugins | head': the reader is gone before overtone writes; no traceback."""
    import os
    import subprocess

    from overtone_core_testing import cli_env

    read, write = os.pipe()
    os.close(read)
    try:
        result = subprocess.run([sys.executable, "-m", "overtone", "plugins", "--verbose"],
                                stdout=write, stderr=subprocess.PIPE, text=True, env=cli_env(), timeout=120)
    finally:
        os.close(write)
    assert result.stderr == "" and result.returncode == 141
