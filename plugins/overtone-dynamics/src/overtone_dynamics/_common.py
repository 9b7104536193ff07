"""Shared input handling for analyzers: checking dims and values, looping over steps, provenance.

Choosing the input variable and skipping the steps where a probe was not recorded are the run
schema's (:func:`overtone.runschema.pick_variable`, :func:`overtone.runschema.drop_unrecorded_steps`).

Every analyzer is a pure function ``xr.Dataset -> xr.Dataset``. Probes may carry a leading
``step`` dim; when they do, the analyzer's kernel runs once per step and the result keeps
``step``. Bad input raises :class:`overtone.DatasetError` with one line saying what was wrong
and what would be right, never a silent NaN.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import xarray as xr
from overtone import DatasetError
from overtone.runschema import STEP, add_history


def check_dims(da: xr.DataArray, ndim: int, analyzer: str, expected: str) -> None:
    """Require ``ndim`` dims besides an optional leading ``step`` dim."""
    dims = [d for d in da.dims if d != STEP]
    if STEP in da.dims and da.dims[0] != STEP:
        raise DatasetError(
            f"{analyzer}: {da.name!r} has dims {da.dims}; 'step' must be the first dim "
            "(transpose it first)"
        )
    if len(dims) != ndim:
        raise DatasetError(
            f"{analyzer}: {da.name!r} has dims {da.dims}; expected {expected} "
            "(optionally with a leading 'step' dim)"
        )


def check_finite(values: np.ndarray, name: str, analyzer: str) -> None:
    """Raise if ``values`` holds NaN or infinity."""
    if not np.all(np.isfinite(values)):
        bad = int(np.size(values) - np.count_nonzero(np.isfinite(values)))
        raise DatasetError(
            f"{analyzer}: {name!r} has {bad} NaN or infinite value(s); drop or fill them first "
            "(for example ds.dropna(...) or ds.fillna(...))"
        )


def as_float(da: xr.DataArray, analyzer: str) -> np.ndarray:
    """The values of ``da`` as a finite float64 array."""
    if not (np.issubdtype(da.dtype, np.number) or np.issubdtype(da.dtype, np.bool_)):
        raise DatasetError(f"{analyzer}: {da.name!r} has dtype {da.dtype}; expected numbers")
    values = np.asarray(da.values, dtype=np.float64)
    check_finite(values, str(da.name), analyzer)
    return values


def per_step(
    da: xr.DataArray,
    kernel: Callable[[np.ndarray], xr.Dataset],
) -> xr.Dataset:
    """Apply ``kernel`` (values without ``step`` -> Dataset) to each step and stack the results.

    Without a ``step`` dim the kernel runs once and its result is returned as is.
    """
    if STEP not in da.dims:
        return kernel(da.values)
    if da.sizes[STEP] == 0:
        raise DatasetError(f"{da.name!r} has an empty 'step' dim; nothing to analyze")
    results = []
    for i in range(da.sizes[STEP]):
        results.append(kernel(da.isel({STEP: i}).values))
    out = xr.concat(results, dim=STEP, data_vars="all", coords="minimal", compat="override",
                    join="override", combine_attrs="override")
    if STEP in da.coords:
        out = out.assign_coords({STEP: da[STEP].values})
    return out


def finish(result: xr.Dataset, analyzer: str, params: dict[str, Any], source: str) -> xr.Dataset:
    """Record provenance as a run-schema ``history`` entry: the analyzer, this plugin's
    version, its parameters and the input variable (:func:`overtone.runschema.add_history`)."""
    from overtone_dynamics import __version__

    return add_history(result, {"component": analyzer, "kind": "analyzer", "plugin": "overtone-dynamics",
                                "version": __version__, "params": dict(params), "input": source})


def last_step(result: xr.Dataset) -> xr.Dataset:
    """The result at its last step (or itself when it has no ``step`` dim)."""
    return result.isel({STEP: -1}) if STEP in result.dims else result


def figure(ncols: int = 1, width: float = 5.0, height: float = 3.6):
    """A matplotlib Figure with ``ncols`` axes, made without pyplot (no global state)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height), layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, axes


def plot_over_steps(ax, result: xr.Dataset, name: str, label: str | None = None) -> None:
    """Plot a per-step scalar against ``step`` (or one marker without a ``step`` dim)."""
    da = result[name]
    if STEP in da.dims:
        ax.plot(da[STEP].values if STEP in da.coords else np.arange(da.sizes[STEP]),
                da.values, marker="." if da.sizes[STEP] < 50 else None, label=label)
        ax.set_xlabel("step")
    else:
        ax.plot([0], [float(da.values)], "o", label=label)
        ax.set_xticks([])
    ax.set_ylabel(da.attrs.get("long_name", name) + (
        f" [{da.attrs['units']}]" if da.attrs.get("units") not in (None, "", "1") else ""))
