"""Results I/O: round trips, atomic writes, readable errors for bad files."""

from __future__ import annotations

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
    from conftest import make_plugin
    from overtone import Component
    from overtone.plugins import load_plugins
    from overtone.registry import Registry

    def read(path, chunks=None):
        return sample(7.0)

    plugin = make_plugin("r", overtone_readers=[Component("reader", "special", read, suffixes=(".special.h5",))])
    loaded = load_plugins(use_entry_points=False, modules=[])
    from overtone.plugins import PluginRecord, _register

    record = PluginRecord("r", "test")
    loaded.plugins.append(record)
    _register(loaded, record, plugin)
    reg = Registry(loaded)
    (tmp_path / "x.special.h5").write_bytes(b"not hdf5")
    assert float(open_dataset(tmp_path / "x.special.h5", registry=reg)["loss"][0]) == 7.0
    plain = write_dataset(sample(2.0), tmp_path / "y.h5")
    with open_dataset(plain, registry=reg) as ds:
        assert float(ds["loss"][0]) == 2.0


def test_reader_params_are_validated_and_passed(tmp_path):
    from conftest import make_plugin
    from overtone import Component, ConfigError, Param
    from overtone.plugins import PluginRecord, _register, load_plugins
    from overtone.registry import Registry

    def read(path, chunks=None, scale=1.0):
        return sample(scale)

    plugin = make_plugin("r", overtone_readers=[Component("reader", "csv", read, params={"scale": Param(1.0)}, suffixes=(".csv",))])
    loaded = load_plugins(use_entry_points=False, modules=[])
    record = PluginRecord("r", "test")
    loaded.plugins.append(record)
    _register(loaded, record, plugin)
    reg = Registry(loaded)
    (tmp_path / "a.csv").write_text("x")
    assert float(open_dataset(tmp_path / "a.csv", registry=reg, reader_params={"scale": 4})["loss"][0]) == 4.0
    with pytest.raises(ConfigError, match=r"reader 'csv' \(--read\): unknown key 'scal'"):
        open_dataset(tmp_path / "a.csv", registry=reg, reader_params={"scal": 4})
    nc = write_dataset(sample(), tmp_path / "b.nc")
    with pytest.raises(DatasetError, match="takes no reader parameters"):
        open_dataset(nc, reader_params={"scale": 2})
