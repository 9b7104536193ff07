"""Reader dispatch by suffix: the longest matching suffix wins."""

from __future__ import annotations

from pathlib import Path

import pytest
from overtone.io import _reader_for, open_dataset


@pytest.fixture
def reg():
    from overtone.plugins import load_plugins
    from overtone.registry import Registry

    return Registry(load_plugins(use_entry_points=False, modules=["lib_api_plugin"]))


def test_longest_suffix_wins(tmp_path, reg):
    """'aaa-plain' claims .fits and sorts first; 'zzz-nested' claims .sw.fits and .sw.nc."""
    assert _reader_for(Path("obs.fits"), reg).component.name == "aaa-plain"
    assert _reader_for(Path("OBS.SW.FITS"), reg).component.name == "zzz-nested"
    assert _reader_for(Path("obs.sw.nc"), reg).component.name == "zzz-nested"
    assert _reader_for(Path("obs.nc"), reg) is None
    assert _reader_for(Path("obs.swfits"), reg) is None
    for name, reader in (("a.fits", "plain"), ("a.sw.fits", "nested"), ("a.sw.nc", "nested")):
        (tmp_path / name).write_bytes(b"")
        assert open_dataset(tmp_path / name, registry=reg).attrs["reader"] == reader


def test_a_reader_returning_no_dataset_is_named_in_one_line(tmp_path):
    import types

    from overtone import Component, PluginError, hookimpl
    from overtone.testing import registry_for

    def read_list(path, chunks=None):
        return [1, 2, 3]

    plugin = types.ModuleType("lister_plugin")
    plugin.overtone_readers = hookimpl(
        lambda: [Component("reader", "lister", read_list, "returns a list", suffixes=(".lst",))])
    plugin.overtone_readers.__name__ = "overtone_readers"
    (tmp_path / "a.lst").write_text("x")
    with pytest.raises(PluginError) as info:
        open_dataset(tmp_path / "a.lst", registry=registry_for(plugin))
    assert str(info.value).startswith("reader 'lister' (plugin ")
    assert str(info.value).endswith("opened 'a.lst' as a list; expected an xarray.Dataset")
