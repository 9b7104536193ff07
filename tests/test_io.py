"""Results I/O: round trips, atomic writes, readable errors for bad files."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import xarray as xr
from overtone import DatasetError
from overtone.io import open_dataset, read_groups, write_dataset, write_groups


def sample(value: float = 1.0) -> xr.Dataset:
    return xr.Dataset(
        {"loss": ("step", np.full(3, value), {"units": "nat"}), "mask": ("step", np.array([True, False, True]))},
        coords={"step": [0, 10, 20]},
        attrs={"title": "t"},
    )


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_round_trip(tmp_path, suffix):
    path = write_dataset(sample(), tmp_path / f"m{suffix}")
    with open_dataset(path) as ds:
        xr.testing.assert_identical(ds.load(), sample())
        assert ds["loss"].attrs["units"] == "nat"


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_failed_write_keeps_previous_file(tmp_path, suffix):
    path = write_dataset(sample(1.0), tmp_path / f"m{suffix}")
    broken = sample(2.0)
    broken["bad"] = ("step", np.array([object(), object(), object()], dtype=object))
    with pytest.raises(ValueError):  # object arrays cannot be encoded
        write_dataset(broken, path)
    with open_dataset(path) as ds:
        assert float(ds["loss"][0]) == 1.0
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary left behind


def test_overwrite_replaces(tmp_path):
    path = write_dataset(sample(1.0), tmp_path / "m.zarr")
    write_dataset(sample(3.0), path)
    with open_dataset(path) as ds:
        assert float(ds["loss"][0]) == 3.0


def test_missing_and_malformed(tmp_path):
    with pytest.raises(DatasetError) as info:
        open_dataset(tmp_path / "none.nc")
    assert str(info.value) == f"dataset {str(tmp_path / 'none.nc')!r} not found; check the path"
    good = write_dataset(sample(), tmp_path / "good.nc")
    truncated = tmp_path / "trunc.nc"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(DatasetError, match=r"cannot read .*trunc.nc' as a netCDF4/HDF5 file .*re-create it"):
        open_dataset(truncated)
    text = tmp_path / "text.nc"
    text.write_text("hello")
    with pytest.raises(DatasetError, match="cannot read .*text.nc' as a netCDF4/HDF5 file"):
        open_dataset(text)


def test_unknown_suffix_lists_readers(tmp_path, example_registry):
    path = tmp_path / "obs.xyz"
    path.write_text("x")
    with pytest.raises(DatasetError, match=r"no reader for '.xyz'; known suffixes: .nc, .zarr"):
        open_dataset(path, registry=example_registry)
    with pytest.raises(DatasetError, match="unknown format; use a .nc"):
        write_dataset(sample(), tmp_path / "out.txt")


def test_groups_add_and_replace(tmp_path):
    path = tmp_path / "analysis.nc"
    write_groups(path, {"a": sample(1.0)})
    write_groups(path, {"b": sample(2.0)})
    write_groups(path, {"a": sample(5.0)})
    groups = read_groups(path)
    assert sorted(groups) == ["a", "b"]
    assert float(groups["a"]["loss"][0]) == 5.0 and float(groups["b"]["loss"][0]) == 2.0


def test_reader_plugin_claims_suffix_before_netcdf(tmp_path):
    from overtone import Component
    from overtone.testing import registry_for
    from overtone_core_testing import make_plugin

    def read(path, chunks=None):
        return sample(7.0)

    plugin = make_plugin("r", overtone_readers=[Component("reader", "special", read, suffixes=(".special.h5",))])
    reg = registry_for(plugin)
    (tmp_path / "x.special.h5").write_bytes(b"not hdf5")
    assert float(open_dataset(tmp_path / "x.special.h5", registry=reg)["loss"][0]) == 7.0
    plain = write_dataset(sample(2.0), tmp_path / "y.h5")
    with open_dataset(plain, registry=reg) as ds:
        assert float(ds["loss"][0]) == 2.0


def test_reader_params_are_validated_and_passed(tmp_path):
    from overtone import Component, ConfigError, Param
    from overtone.testing import registry_for
    from overtone_core_testing import make_plugin

    def read(path, chunks=None, scale=1.0):
        return sample(scale)

    plugin = make_plugin("r", overtone_readers=[Component("reader", "csv", read, params={"scale": Param(1.0)}, suffixes=(".csv",))])
    reg = registry_for(plugin)
    (tmp_path / "a.csv").write_text("x")
    assert float(open_dataset(tmp_path / "a.csv", registry=reg, reader_params={"scale": 4})["loss"][0]) == 4.0
    with pytest.raises(ConfigError, match=r"reader 'csv' \(--read\): unknown key 'scal'"):
        open_dataset(tmp_path / "a.csv", registry=reg, reader_params={"scal": 4})
    nc = write_dataset(sample(), tmp_path / "b.nc")
    with pytest.raises(DatasetError, match="takes no reader parameters"):
        open_dataset(nc, reader_params={"scale": 2})


# -- streaming: append_step / truncate_steps ------------------------------------------------


def one_step(step: int, *, emb: bool = True, hid: bool = False) -> xr.Dataset:
    """A probe snapshot of one step: embeddings (with a string coordinate) and/or hidden + labels."""
    data = {}
    if emb:
        data["embeddings"] = xr.DataArray(np.full((1, 4, 3), step, np.float32), dims=("step", "token", "embed_dim"),
                                          coords={"token_label": ("token", ["a", "bb", "+", "0"])},
                                          attrs={"units": "1"})
    if hid:
        data["hidden"] = (("step", "sample", "feature"), np.full((1, 5, 2), -step, np.float64))
        data["labels"] = ("sample", np.arange(5))
    return xr.Dataset(data, coords={"step": [step]}, attrs={"p": 23, "task": "modular"})


def test_append_step_grows_one_step_at_a_time(tmp_path):
    from overtone.io import append_step

    path = tmp_path / "probes.nc"
    append_step(path, one_step(10))
    append_step(path, one_step(15, emb=False, hid=True))  # a variable new at the 2nd step
    append_step(path, one_step(20, hid=True))
    # reference: the snapshots joined in memory by xarray (outer join fills NaN)
    expected = xr.concat([one_step(10), one_step(15, emb=False, hid=True), one_step(20, hid=True)], "step",
                         join="outer", data_vars="minimal", coords="minimal", compat="override")
    with open_dataset(path) as ds:
        assert ds.step.values.tolist() == [10, 15, 20]
        for name in ("embeddings", "hidden", "labels", "token_label"):
            np.testing.assert_array_equal(ds[name].values, expected[name].values, err_msg=name)
        assert ds["embeddings"].dtype == np.float32 and ds["embeddings"].attrs["units"] == "1"
        assert ds.attrs["p"] == 23 and "token_label" in ds.coords


def test_append_step_refuses_bad_steps_and_keeps_the_file(tmp_path):
    from overtone.io import append_step

    path = tmp_path / "probes.nc"
    append_step(path, one_step(10))
    with pytest.raises(DatasetError, match=r"^probes.nc: cannot append step 10 after step 10; steps must increase$"):
        append_step(path, one_step(10))
    bigger = one_step(20).isel(token=[0, 1, 2, 3, 0])
    with pytest.raises(DatasetError, match=r"'embeddings' has token=5 at step 20, but 4 in the file"):
        append_step(path, bigger)
    with open_dataset(path) as ds:
        assert ds.step.values.tolist() == [10] and float(ds["embeddings"].max()) == 10


def test_truncate_steps_drops_the_steps_after(tmp_path):
    from overtone.io import append_step, truncate_steps

    path = tmp_path / "probes.nc"
    for step in (10, 20, 30):
        append_step(path, one_step(step, hid=step == 30))
    assert truncate_steps(path, 25) == 2
    append_step(path, one_step(30))
    with open_dataset(path) as ds:
        assert ds.step.values.tolist() == [10, 20, 30]
        assert ds["embeddings"][:, 0, 0].values.tolist() == [10, 20, 30]
        assert np.isnan(ds["hidden"].values).all()  # its step was cut; the variable stays, empty


# -- analysis groups and durability ---------------------------------------------------------


def test_write_groups_does_not_read_back(tmp_path, monkeypatch):
    path = tmp_path / "analysis.nc"
    write_groups(path, {"a": sample(1.0)})

    def refuse(*args, **kwargs):
        raise AssertionError("write_groups read the file back")

    monkeypatch.setattr(xr, "open_datatree", refuse)
    monkeypatch.setattr(xr, "open_dataset", refuse)
    write_groups(path, {"b": sample(2.0), "c/d": sample(4.0)})
    write_groups(path, {"a": sample(5.0)})
    monkeypatch.undo()
    groups = read_groups(path)
    assert sorted(groups) == ["a", "b", "c/d"]
    assert [float(groups[k]["loss"][0]) for k in ("a", "b", "c/d")] == [5.0, 2.0, 4.0]


def test_failed_group_write_keeps_the_old_group(tmp_path):
    path = tmp_path / "analysis.nc"
    write_groups(path, {"a": sample(1.0)})
    broken = sample(2.0)
    broken["bad"] = ("step", np.array([object(), object(), object()], dtype=object))
    with pytest.raises(ValueError):
        write_groups(path, {"a": broken})
    groups = read_groups(path)
    assert list(groups) == ["a"] and float(groups["a"]["loss"][0]) == 1.0
    import h5py

    with h5py.File(path) as f:
        assert list(f) == ["a"]  # no half-written group left behind


def test_replacing_a_group_reuses_space(tmp_path):
    path = tmp_path / "analysis.nc"
    big = xr.Dataset({"x": ("n", np.random.default_rng(0).normal(size=50_000))})
    write_groups(path, {"a": big})
    once = path.stat().st_size
    for _ in range(40):
        write_groups(path, {"a": big})
    assert path.stat().st_size < 4 * once  # 40 replacements, without reuse: 41x


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="names the fsync'ed files through /proc")
def test_atomic_target_fsyncs_before_the_rename(tmp_path, monkeypatch):
    import os

    from overtone import io

    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"))),
                                                 real_fsync(fd)))
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append(("replace", str(b))), real_replace(a, b)))
    path = tmp_path / "out.txt"
    with io.atomic_target(path) as tmp:
        tmp.write_text("new")
    kinds = [(kind, name.endswith("out.txt") and kind == "fsync" and ".tmp" in name) for kind, name in events]
    assert kinds[0] == ("fsync", True)  # the new file's data first
    assert events[1] == ("replace", str(path))
    assert events[2] == ("fsync", str(tmp_path))  # then the directory entry
    assert path.read_text() == "new"


def test_append_step_compresses_on_request(tmp_path):
    import h5py
    from overtone.io import append_step

    append_step(tmp_path / "z.nc", one_step(1), complevel=4)
    append_step(tmp_path / "z.nc", one_step(2))
    append_step(tmp_path / "p.nc", one_step(1))
    with h5py.File(tmp_path / "z.nc") as z, h5py.File(tmp_path / "p.nc") as p:
        assert (z["embeddings"].compression, z["embeddings"].compression_opts) == ("gzip", 4)
        assert p["embeddings"].compression is None and z["embeddings"].chunks == (1, 4, 3)
    with open_dataset(tmp_path / "z.nc") as ds:
        assert ds["embeddings"][:, 0, 0].values.tolist() == [1, 2]


def test_truncating_a_damaged_file_says_what_to_do(tmp_path):
    from overtone.io import append_step, truncate_steps

    path = tmp_path / "probes.nc"
    append_step(path, one_step(10))
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(DatasetError, match=r"cannot cut .*probes.nc' back to step 5 .*damaged .*move it away"):
        truncate_steps(path, 5)
