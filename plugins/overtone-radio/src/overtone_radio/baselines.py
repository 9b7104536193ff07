"""The methods the FFT filter is compared with in arXiv 2411.13016 (as HiFAST offers them).

* ``sine-fit``: per spectrum and per ``segment_mhz`` segment, least squares of
  a + b nu + c cos(2 pi tau nu) + d sin(2 pi tau nu) over a grid of delays tau in
  ``tau_range_us`` (HiFAST: 0.90-0.95 us, i.e. periods of 1.05-1.11 MHz, fitted with Powell's
  method; here an exhaustive grid, which finds the global optimum); the fitted sinusoid is
  subtracted, the line is kept. Protected channels are substituted first, as for the FFT filter.
* ``running-median``: the running median along time over ``window`` spectra (HiFAST: 200) is
  the baseline; out = x - baseline + mean_nu(baseline), so the output keeps each spectrum's
  level (needed by the radiometer equation) while everything constant in time is removed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr
from overtone import ConfigError, DatasetError

from overtone_radio import __version__
from overtone_radio.protect import substitute
from overtone_radio.spectra import (
    MILKY_WAY_MHZ,
    check_pair,
    check_pairs,
    frequency_axis,
    frequency_chunked_once,
    pick_variable,
    protection_mask,
    record,
)


def sine_fit(x: np.ndarray, protect: np.ndarray | None, *, freq_mhz: np.ndarray,
             segment_mhz: float = 10.0, tau_range_us: Sequence[float] = (0.88, 0.97),
             n_tau: int = 46, period_mhz: float | None = None) -> np.ndarray:
    """Spectra ``x`` (..., N) with the best-fitting sinusoid removed per segment (see module)."""
    shape = x.shape
    n = shape[-1]
    rows = x.reshape(-1, n)
    dtype = rows.dtype if rows.dtype in (np.float32, np.float64) else np.float64
    step = abs(float(freq_mhz[1] - freq_mhz[0]))
    prot = ~np.isfinite(rows)
    if protect is not None:
        prot = prot | np.broadcast_to(protect, shape).reshape(-1, n)
    period = period_mhz or 2.0 / (tau_range_us[0] + tau_range_us[1])
    work, empty, _ = substitute(rows, prot, period / step) if prot.any() else (rows, np.zeros(len(rows), bool), [])
    work = np.where(empty[:, None], 0.0, work).astype(np.float64)
    taus = np.linspace(tau_range_us[0], tau_range_us[1], n_tau)
    seg_len = max(16, int(round(segment_mhz / step)))
    edges = list(range(0, n, seg_len))
    if len(edges) > 1 and n - edges[-1] < seg_len // 2:
        edges.pop()
    edges.append(n)
    model = np.zeros_like(work)
    for a, b in zip(edges[:-1], edges[1:]):
        f = freq_mhz[a:b] - freq_mhz[a]
        t = np.linspace(-1, 1, b - a)
        y = work[:, a:b]
        best_score = np.full(len(rows), -np.inf)
        best = np.zeros((len(rows), b - a))
        for tau in taus:
            basis = np.stack([np.ones_like(t), t, np.cos(2 * np.pi * tau * f),
                              np.sin(2 * np.pi * tau * f)], axis=1)
            gram_inv = np.linalg.pinv(basis.T @ basis)
            g = y @ basis
            coef = g @ gram_inv
            score = (coef * g).sum(axis=1)
            better = score > best_score
            if better.any():
                best_score = np.where(better, score, best_score)
                sinus = coef[:, 2:] @ basis[:, 2:].T
                best[better] = sinus[better]
        model[:, a:b] = best
    out = rows - model.astype(dtype)
    out[empty] = rows[empty]
    return out.reshape(shape)


class SineFit:
    """``sine-fit``: sinusoid + line least squares per segment (see the module docstring)."""

    name = "sine-fit"

    def __init__(self, variable: str | None = None, segment_mhz: float = 10.0,
                 tau_range_us: Sequence[float] = (0.88, 0.97), n_tau: int = 46,
                 protect: bool = True,
                 protect_ranges_mhz: Sequence[Sequence[float]] = MILKY_WAY_MHZ) -> None:
        if segment_mhz <= 0 or n_tau < 2:
            raise ConfigError("segment_mhz must be positive and n_tau at least 2")
        tau_range_us = check_pair(tau_range_us, "tau_range_us", "us")
        if tau_range_us[0] == 0:
            raise ConfigError("tau_range_us must start above 0 us")
        self.variable = variable
        self.segment_mhz = float(segment_mhz)
        self.tau_range_us = (float(tau_range_us[0]), float(tau_range_us[1]))
        self.n_tau = int(n_tau)
        self.protect = protect
        self.protect_ranges_mhz = [list(r) for r in check_pairs(protect_ranges_mhz, "protect_ranges_mhz", "MHz")]

    def params(self) -> dict[str, Any]:
        return {"variable": self.variable, "segment_mhz": self.segment_mhz,
                "tau_range_us": list(self.tau_range_us), "n_tau": self.n_tau,
                "protect": self.protect, "protect_ranges_mhz": self.protect_ranges_mhz}

    def __call__(self, ds: xr.Dataset) -> xr.Dataset:
        name = pick_variable(ds, self.variable)
        axis = frequency_axis(ds)
        data = frequency_chunked_once(ds[name])
        kwargs = dict(freq_mhz=axis.values_mhz, segment_mhz=self.segment_mhz,
                      tau_range_us=self.tau_range_us, n_tau=self.n_tau)
        protect = (protection_mask(ds, data, axis, self.protect_ranges_mhz)
                   if self.protect else None)
        args = [data] if protect is None else [data, protect]

        def kernel(x, p=None):
            return sine_fit(x, p, **kwargs)

        cleaned = xr.apply_ufunc(kernel, *args, input_core_dims=[["frequency"]] * len(args),
                                 output_core_dims=[["frequency"]], dask="parallelized",
                                 output_dtypes=[data.dtype], keep_attrs=True)
        out = ds.copy()
        out[name] = cleaned.transpose(*ds[name].dims).assign_attrs(ds[name].attrs)
        record(out, self.name, __version__, self.params())
        return out

    def plot(self, before: xr.Dataset, after: xr.Dataset):
        """Spectrum and delay spectrum, before and after."""
        from overtone_radio.plotting import before_after

        return before_after(before, after, self.variable, title=self.name)


def running_median_block(x: np.ndarray, window: int, axis: int) -> np.ndarray:
    """``x - median_window(x) + mean over the last axis of the median`` along ``axis``
    (scipy.ndimage.median_filter, edges by the nearest spectrum); NaN stays NaN."""
    from scipy.ndimage import median_filter

    bad = ~np.isfinite(x)
    work = x
    if bad.any():
        fill = np.nanmedian(x, axis=axis, keepdims=True)
        work = np.where(bad, np.broadcast_to(np.nan_to_num(fill), x.shape), x)
    size = [1] * x.ndim
    size[axis] = window
    base = median_filter(work, size=tuple(size), mode="nearest")
    out = x - base + base.mean(axis=-1, keepdims=True)
    return out.astype(x.dtype, copy=False)


class RunningMedian:
    """``running-median``: subtract the running median over ``window`` spectra along time."""

    name = "running-median"

    def __init__(self, variable: str | None = None, window: int = 200) -> None:
        if window < 3:
            raise ConfigError(f"window = {window}; use at least 3 spectra")
        self.variable = variable
        self.window = int(window)

    def params(self) -> dict[str, Any]:
        return {"variable": self.variable, "window": self.window}

    def __call__(self, ds: xr.Dataset) -> xr.Dataset:
        name = pick_variable(ds, self.variable)
        frequency_axis(ds, uniform=False)
        data = ds[name]
        if "time" not in data.dims:
            raise DatasetError(f"running-median needs a 'time' dimension; {name!r} has {data.dims}")
        ntime = data.sizes["time"]
        window = min(self.window, ntime if ntime % 2 else ntime - 1)
        if window < 3:
            raise DatasetError(f"running-median needs at least 3 spectra along time, got {ntime}")
        order = [d for d in data.dims if d != "frequency"] + ["frequency"]
        data = data.transpose(*order)
        axis = order.index("time")
        if data.chunks is None:
            values = running_median_block(data.values, window, axis)
        else:
            import dask.array as da

            arr = data.data.rechunk({data.ndim - 1: -1})
            depth = window // 2
            if min(arr.chunks[axis]) < depth:
                arr = arr.rechunk({axis: max(depth, 256)})
            values = da.map_overlap(running_median_block, arr, depth={axis: depth},
                                    boundary="none", window=window, axis=axis, dtype=arr.dtype)
        cleaned = xr.DataArray(values, dims=order, coords=data.coords, attrs=ds[name].attrs)
        out = ds.copy()
        out[name] = cleaned.transpose(*ds[name].dims)
        out[name].attrs["running_median_window"] = window
        record(out, self.name, __version__, self.params())
        return out

    def plot(self, before: xr.Dataset, after: xr.Dataset):
        """Spectrum and delay spectrum, before and after."""
        from overtone_radio.plotting import before_after

        return before_after(before, after, self.variable, title=self.name)
