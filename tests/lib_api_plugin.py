"""A test plugin for the library API tests: processors that record their plots, analyzers that
misbehave in each way a plugin author can, a reader pair with nested suffixes, a tiny engine.

Loaded with ``OVERTONE_PLUGINS=lib_api_plugin`` (tests/ on ``PYTHONPATH``) or in-process.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr
from overtone import Component, DatasetError, Param, hookimpl

#: (step name, before, after) for every plot drawn, in order.
PLOTS: list[tuple[str, np.ndarray, np.ndarray]] = []


class RemoveOffset:
    """Subtract a constant ``offset`` from ``spectra``."""

    def __init__(self, offset: float = 100.0) -> None:
        self.offset = offset

    def __call__(self, ds: xr.Dataset) -> xr.Dataset:
        return ds.assign(spectra=ds["spectra"] - self.offset)

    def plot(self, before: xr.Dataset, after: xr.Dataset):
        return _record("remove-offset", before, after)


class Scale:
    """Multiply ``spectra`` by ``factor``."""

    def __init__(self, factor: float = 2.0) -> None:
        self.factor = factor

    def __call__(self, ds: xr.Dataset) -> xr.Dataset:
        return ds.assign(spectra=ds["spectra"] * self.factor)

    def plot(self, before: xr.Dataset, after: xr.Dataset):
        return _record("scale", before, after)


def _record(name: str, before: xr.Dataset, after: xr.Dataset):
    import matplotlib.pyplot as plt

    PLOTS.append((name, before["spectra"].values, after["spectra"].values))
    figure, ax = plt.subplots()
    ax.plot(before["spectra"].values.ravel())
    ax.plot(after["spectra"].values.ravel())
    return figure


class Seen:
    """Which steps and variables the analyzer was given."""

    def __init__(self, variable: str | None = None) -> None:
        self.variable = variable

    def __call__(self, ds: xr.Dataset) -> xr.Dataset:
        steps = ds["step"].values if "step" in ds.dims else np.array([], dtype=int)
        return xr.Dataset({"steps": ("seen", steps)},
                          attrs={"variables": ",".join(sorted(map(str, ds.data_vars)))})


class BadPlot(Seen):
    """Analyzes like ``seen``; its plot raises."""

    def plot(self, result: xr.Dataset):
        raise ValueError("no axes")


def boom(**_: object):
    def analyzer(ds: xr.Dataset) -> xr.Dataset:
        raise RuntimeError("kaput")
    return analyzer


def as_dict(**_: object):
    return lambda ds: {"a": 1}


def as_dataarray(**_: object):
    return lambda ds: xr.DataArray(np.arange(3.0), dims="x")


def as_int(**_: object):
    return lambda ds: 3


def refuses(**_: object):
    def analyzer(ds: xr.Dataset) -> xr.Dataset:
        raise DatasetError("refuses: needs a 'weights' variable")
    return analyzer


def broken_factory(**_: object):
    raise RuntimeError("cannot build")


def open_plain(path: Path, chunks=None) -> xr.Dataset:
    return xr.Dataset(attrs={"reader": "plain", "path": str(path)})


def open_nested(path: Path, chunks=None) -> xr.Dataset:
    return xr.Dataset(attrs={"reader": "nested", "path": str(path)})


class TinyEngine:
    """Writes metrics.nc with ``train_loss = scale / (1 + step)``: no training, no torch."""

    def resolve(self, config, *, source, registry):
        from overtone.params import resolve_params

        train = {"steps": Param(4), "scale": Param(1.0)}
        return {"train": resolve_params(config.get("train", {}), train, f"{source} [train]")}

    def run(self, config, run_dir: Path, *, resume: bool = False) -> None:
        from overtone.io import write_dataset

        steps = np.arange(config["train"]["steps"])
        loss = config["train"]["scale"] / (1.0 + steps) + config["run"]["seed"]
        write_dataset(xr.Dataset({"train_loss": ("step", loss)}, coords={"step": steps}),
                      run_dir / "metrics.nc")


@hookimpl
def overtone_signal_processors():
    return [
        Component("signal_processor", "remove-offset", RemoveOffset, "subtract an offset",
                  params={"offset": Param(100.0)}),
        Component("signal_processor", "scale", Scale, "multiply", params={"factor": Param(2.0)}),
    ]


@hookimpl
def overtone_analyzers():
    return [
        Component("analyzer", "seen", Seen, "steps and variables given",
                  params={"variable": Param(None, type=str)}),
        Component("analyzer", "boom", boom, "raises RuntimeError"),
        Component("analyzer", "bad-plot", BadPlot, "its plot raises"),
        Component("analyzer", "as-dict", as_dict, "returns a dict"),
        Component("analyzer", "as-da", as_dataarray, "returns a DataArray"),
        Component("analyzer", "as-int", as_int, "returns an int"),
        Component("analyzer", "refuses", refuses, "refuses its input"),
        Component("analyzer", "no-build", broken_factory, "its factory raises"),
        Component("analyzer", "not-callable", lambda: 42, "its factory returns an int"),
    ]


@hookimpl
def overtone_readers():
    return [
        Component("reader", "aaa-plain", open_plain, "claims .fits", suffixes=(".fits",)),
        Component("reader", "zzz-nested", open_nested, "claims .sw.fits and .sw.nc",
                  suffixes=(".sw.fits", ".sw.nc")),
    ]


@hookimpl
def overtone_engines():
    return [Component("engine", "tiny", TinyEngine, "writes a fixed loss curve")]
