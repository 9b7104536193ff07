"""``rms-ratio``: measured noise over the radiometer equation, per spectrum.

How it is measured (this is the definition used by every table in docs/radio.md):

1. spectra are averaged in groups of ``average`` consecutive spectra along ``time`` and
   binned by ``bin_channels`` channels (the paper's RMS is on such averaged/smoothed products;
   ``average=1, bin_channels=1`` measures the raw spectra);
2. ``edge_mhz`` is dropped at each end of the band, the rest is cut into windows of
   ``window_mhz``; masked channels (``source_mask``, ``flag``, NaN) are left out;
3. in each window a straight line is fitted and removed (it takes out the bandpass, not a
   ~1 MHz ripple: a 10 MHz window holds nine ripple periods), points beyond 5 robust sigma
   are clipped once (narrow RFI; robust sigma = 1.4826 MAD, ``scipy.stats.median_abs_deviation``
   with ``scale="normal"``), and the standard deviation is the measured RMS;
4. the expected RMS is T_sys / sqrt(dnu * tau) with dnu = bin_channels * |channel width| (Hz),
   tau = the summed exposure of the group (s) and T_sys = the ``tsys`` parameter, else a
   ``tsys`` variable of the dataset (as SDFITS readers give; averaged over the group), else
   the window's mean level (right for uncalibrated, not baseline-subtracted data);
5. the ratio per group is the median over windows; every spectrum of a group gets it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr
from overtone import ConfigError, DatasetError
from scipy.stats import median_abs_deviation

from overtone_radio import __version__
from overtone_radio.spectra import (
    FLAG,
    SOURCE_MASK,
    frequency_axis,
    optional_mask,
    pick_variable,
    record,
)


def window_rms(x: np.ndarray, edge: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``x`` (rows, n; NaN = masked): the median over windows of ``width`` points
    (after dropping ``edge`` points each end) of the line-removed, 5-sigma-clipped standard
    deviation, and the median of the windows' mean levels."""
    rows, n = x.shape
    usable = n - 2 * edge
    nwin = usable // width
    if nwin < 1:
        raise DatasetError(f"the band is too narrow for one {width}-point window after dropping "
                           f"{edge} points at each end; lower window_mhz or edge_mhz")
    seg = x[:, edge:edge + nwin * width].reshape(rows, nwin, width).astype(np.float64)
    ok = np.isfinite(seg)
    t = np.linspace(-1.0, 1.0, width)
    for _ in range(2):
        w = ok.astype(np.float64)
        s = np.where(ok, seg, 0.0)
        sw, st, stt = w.sum(-1), (w * t).sum(-1), (w * t * t).sum(-1)
        sy, sty = s.sum(-1), (s * t).sum(-1)
        det = sw * stt - st**2
        with np.errstate(invalid="ignore", divide="ignore"):
            slope = (sw * sty - st * sy) / det
            icpt = (sy - slope * st) / sw
            resid = np.where(ok, seg - icpt[..., None] - slope[..., None] * t, np.nan)
        # robust sigma = 1.4826 x median absolute deviation (scipy's scale="normal"); an
        # all-masked window is given zeros (no NaN-slice warning) and clips nothing
        empty = ~ok.any(-1, keepdims=True)
        sigma = median_abs_deviation(np.where(empty, 0.0, resid), axis=-1, scale="normal",
                                     nan_policy="omit")
        ok = ok & ~(np.abs(resid) > 5 * sigma[..., None])
    with np.errstate(invalid="ignore", divide="ignore"):
        std = np.sqrt(np.nansum(np.where(ok, resid, 0.0) ** 2, -1) / (ok.sum(-1) - 2))
        level = np.where(ok, seg, 0.0).sum(-1) / ok.sum(-1)
    std[ok.sum(-1) < max(8, width // 4)] = np.nan
    return _nanmedian_rows(std), _nanmedian_rows(level)


def _nanmedian_rows(a: np.ndarray) -> np.ndarray:
    """Median over axis 1 ignoring NaN; NaN for an all-NaN row, without a warning (warning
    filters are process-wide, so this runs in dask threads without touching them)."""
    empty = np.isnan(a).all(axis=1)
    out = np.nanmedian(np.where(empty[:, None], 0.0, a), axis=1)
    out[empty] = np.nan
    return out


class RMSRatio:
    """``rms-ratio``: measured RMS over T_sys / sqrt(dnu tau) (see the module docstring).

    Returns the input Dataset plus ``rms_ratio``, ``rms`` and ``rms_expected`` with the
    data's dims minus ``frequency`` (one value per spectrum: that of its averaging group;
    NaN for a trailing incomplete group or an all-masked spectrum).
    """

    name = "rms-ratio"

    def __init__(self, variable: str | None = None, average: int = 10, bin_channels: int = 16,
                 window_mhz: float = 10.0, edge_mhz: float = 10.0, tsys: float | None = None,
                 exposure: float | None = None) -> None:
        if average < 1 or bin_channels < 1:
            raise ConfigError("average and bin_channels must be at least 1")
        if window_mhz <= 0 or edge_mhz < 0:
            raise ConfigError("window_mhz must be positive and edge_mhz non-negative")
        if tsys is not None and tsys <= 0:
            raise ConfigError(f"tsys = {tsys}; give the system temperature in the data's units")
        self.variable = variable
        self.average = int(average)
        self.bin_channels = int(bin_channels)
        self.window_mhz = float(window_mhz)
        self.edge_mhz = float(edge_mhz)
        self.tsys = tsys
        self.exposure = exposure

    def params(self) -> dict[str, Any]:
        return {"variable": self.variable, "average": self.average,
                "bin_channels": self.bin_channels, "window_mhz": self.window_mhz,
                "edge_mhz": self.edge_mhz, "tsys": self.tsys, "exposure": self.exposure}

    def __call__(self, ds: xr.Dataset) -> xr.Dataset:
        from overtone_radio.spectra import exposure_seconds

        name = pick_variable(ds, self.variable)
        axis = frequency_axis(ds)
        data = ds[name]
        for mask_name in (SOURCE_MASK, FLAG):
            mask = optional_mask(ds, mask_name, data)
            if mask is not None:
                data = data.where(~mask)
        exposure = exposure_seconds(ds, data, self.exposure)
        average = self.average if "time" in data.dims else 1
        if "time" in data.dims and data.sizes["time"] < average:
            raise DatasetError(f"average = {average} but only {data.sizes['time']} spectra; "
                               "lower average")
        if axis.n < self.bin_channels * 8:
            raise DatasetError(f"bin_channels = {self.bin_channels} leaves under 8 channels")
        if average > 1:
            grouped = data.coarsen(time=average, boundary="trim").reduce(np.mean)
            if "time" in exposure.dims:
                tau = exposure.coarsen(time=average, boundary="trim").sum()
            else:
                tau = exposure * average
        else:
            grouped, tau = data, exposure
        if self.bin_channels > 1:
            grouped = grouped.coarsen(frequency=self.bin_channels, boundary="trim").reduce(np.mean)
        dnu_hz = axis.width_mhz * self.bin_channels * 1e6
        edge = int(round(self.edge_mhz / (axis.width_mhz * self.bin_channels)))
        width = max(8, int(round(self.window_mhz / (axis.width_mhz * self.bin_channels))))

        def kernel(x):
            flat = x.reshape(-1, x.shape[-1])
            std, level = window_rms(flat, edge, width)
            return np.stack([std, level], axis=-1).reshape(*x.shape[:-1], 2)

        if grouped.chunks is not None:
            grouped = grouped.chunk({"frequency": -1})
        stats = xr.apply_ufunc(kernel, grouped, input_core_dims=[["frequency"]],
                               output_core_dims=[["stat"]], dask="parallelized",
                               output_dtypes=[np.float64],
                               dask_gufunc_kwargs={"output_sizes": {"stat": 2}})
        std, level = stats.isel(stat=0, drop=True), stats.isel(stat=1, drop=True)
        if self.tsys is not None:
            tsys = self.tsys
        elif "tsys" in ds.variables and "frequency" not in ds["tsys"].dims:
            tsys = ds["tsys"].astype(np.float64)  # the reader's system temperature
            if average > 1 and "time" in tsys.dims:
                tsys = tsys.coarsen(time=average, boundary="trim").mean()
        else:
            tsys = level
        expected = tsys / np.sqrt(dnu_hz * tau)
        if average > 1:
            n_full = (data.sizes["time"] // average) * average
            spread = np.minimum(np.arange(data.sizes["time"]) // average, n_full // average - 1)
            valid = xr.DataArray(np.arange(data.sizes["time"]) < n_full, dims="time")
            std = std.isel(time=xr.DataArray(spread, dims="time")).where(valid)
            expected = expected.isel(time=xr.DataArray(spread, dims="time")).where(valid)
            std = std.assign_coords(time=data["time"])
            expected = expected.assign_coords(time=data["time"])
        out = ds.copy()
        out["rms"] = std.assign_attrs(units=ds[name].attrs.get("units", ""),
                                      long_name="measured RMS (see rms-ratio docs)")
        out["rms_expected"] = expected.assign_attrs(units=ds[name].attrs.get("units", ""),
                                                    long_name="T_sys / sqrt(dnu tau)")
        out["rms_ratio"] = (std / expected).assign_attrs(
            units="1", long_name="measured RMS / radiometer-equation RMS",
            average=average, bin_channels=self.bin_channels)
        record(out, self.name, __version__, self.params())
        return out
