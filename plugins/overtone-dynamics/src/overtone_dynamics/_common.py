"""Shared input handling for analyzers: choosing the variable, checking dims, looping over steps.

Every analyzer is a pure function ``xr.Dataset -> xr.Dataset``. Probes may carry a leading
``step`` dim; when they do, the analyzer's kernel runs once per step and the result keeps
``step``. Bad input raises :class:`overtone.DatasetError` with one line saying what was wrong
and what would be right, never a silent NaN.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import xarray as xr
from overtone import DatasetError

STEP = "step"


def pick_variable(
    ds: xr.Dataset | xr.DataArray,
    variable: str | None,
    candidates: Sequence[str],
    analyzer: str,
    *,
    prefix: str | None = None,
) -> xr.DataArray:
    """Return the data variable ``variable`` of ``ds`` (or the first present candidate)."""
    if isinstance(ds, xr.DataArray):
        return ds
    if not isinstance(ds, xr.Dataset):
        raise DatasetError(f"{analyzer}: expected an xarray.Dataset, got {type(ds).__name__}")
    names = list(ds.data_vars)
    if variable is not None:
        if variable not in ds.variables:
            raise DatasetError(
                f"{analyzer}: no variable {variable!r} in the dataset; it has: "
                f"{', '.join(map(str, names)) or '(none)'}; set variable= to one of them"
            )
        return ds[variable]
    for name in candidates:
        if name in ds.data_vars:
            return ds[name]
    if prefix is not None:
        matches = sorted(str(n) for n in names if str(n).startswith(prefix))
        if matches:
            return ds[matches[0]]
    wanted = ", ".join(list(candidates) + ([f"{prefix}*"] if prefix else []))
    raise DatasetError(
        f"{analyzer}: found none of the variables {wanted} in the dataset (it has: "
        f"{', '.join(map(str, names)) or '(none)'}); set variable= to the one to analyze"
    )


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


def drop_missing_steps(da: xr.DataArray, analyzer: str) -> xr.DataArray:
    """Leave out the steps at which ``da`` is entirely NaN.

    A run's probes.nc aligns every probe on one ``step`` dim, so a probe recorded less often
    than another is NaN at the other's steps: those steps hold no data for this analyzer and
    are skipped (a NaN inside a recorded step is still an error).
    """
    if STEP not in da.dims or not np.issubdtype(da.dtype, np.floating):
        return da
    other = [d for d in da.dims if d != STEP]
    present = ~np.isnan(da.values).reshape(da.sizes[STEP], -1).all(axis=1) if other else \
        ~np.isnan(da.values)
    if not present.any():
        raise DatasetError(f"{analyzer}: {da.name!r} is NaN at every step; nothing to analyze")
    return da if present.all() else da.isel({STEP: np.flatnonzero(present)})


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
    """Record provenance in ``result.attrs``: analyzer name, parameters, input variable."""
    from overtone_dynamics import __version__

    result.attrs["analyzer"] = analyzer
    result.attrs["analyzer_version"] = __version__
    result.attrs["input_variable"] = source
    result.attrs["params"] = repr({k: v for k, v in params.items()})
    return result


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
