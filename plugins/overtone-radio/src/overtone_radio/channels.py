"""Everyday channel steps: narrow-RFI flagging, a polynomial baseline, smoothing/binning.

* ``flag-narrow-rfi``: per spectrum, r = x - running median of x over ``window_mhz``
  (``scipy.ndimage.median_filter``); robust sigma = 1.4826 MAD of r
  (``scipy.stats.median_abs_deviation``); channels with |r| > ``nsigma`` sigma are flagged,
  widened by ``grow_mhz`` each side, and OR-ed into ``flag``. The running median follows
  the bandpass and lines wider than the window; a spike a few channels wide stands out.
* ``polynomial-baseline``: per spectrum, a Chebyshev series of degree ``order`` in
  t = 2 (nu - nu_min) / (nu_max - nu_min) - 1 fitted by least squares on the line-free
  channels (not ``source_mask``, ``flag``, NaN or inside ``exclude_mhz``), then subtracted
  from every channel (the GBTIDL/dysh baseline step).
* ``smooth``: along frequency, ``kernel="boxcar"`` (mean of ``channels`` neighbours) or
  ``"hanning"`` (weights 1/4, 1/2, 1/4); with ``decimate`` every ``channels``-th (boxcar)
  or every 2nd (hanning) channel is kept, so channels stay independent; the frequency
  coordinate follows (the centre of each output channel).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr
from overtone import ConfigError, DatasetError

from overtone_radio import __version__
from overtone_radio.spectra import (
    FLAG,
    SOURCE_MASK,
    check_pairs,
    frequency_axis,
    frequency_chunked_once,
    optional_mask,
    pick_variable,
    record,
)


def narrow_rfi(x: np.ndarray, *, window: int, nsigma: float, grow: int) -> np.ndarray:
    """Boolean mask (same shape as ``x``, frequency last) of narrow RFI: |x - running
    median over ``window`` channels| > ``nsigma`` x 1.4826 MAD, widened by ``grow``
    channels each side (see the module docstring). NaN channels are never flagged and are
    filled with the spectrum's median for the running median."""
    from scipy.ndimage import binary_dilation, median_filter
    from scipy.stats import median_abs_deviation

    rows = x.reshape(-1, x.shape[-1]).astype(np.float64)
    finite = np.isfinite(rows)
    out = np.zeros(rows.shape, bool)
    for i, (row, ok) in enumerate(zip(rows, finite)):
        if ok.sum() < 8:
            continue
        filled = np.where(ok, row, np.median(row[ok]))
        resid = filled - median_filter(filled, size=window, mode="mirror")
        sigma = median_abs_deviation(resid[ok], scale="normal")
        if sigma == 0:
            continue
        hit = ok & (np.abs(resid) > nsigma * sigma)
        out[i] = binary_dilation(hit, np.ones(2 * grow + 1, bool)) if grow and hit.any() else hit
    return out.reshape(x.shape)


class NarrowRFIFlagger:
    """``flag-narrow-rfi``: flag spikes against a running median (see the module docstring).
    Returns the input with ``flag`` (the data's dims) OR-ed with what was found; lazy on
    dask input."""

    name = "flag-narrow-rfi"

    def __init__(self, variable: str | None = None, window_mhz: float = 0.1,
                 nsigma: float = 6.0, grow_mhz: float = 0.0) -> None:
        if window_mhz <= 0 or nsigma <= 0 or grow_mhz < 0:
            raise ConfigError("window_mhz and nsigma must be positive and grow_mhz >= 0")
        self.variable = variable
        self.window_mhz = float(window_mhz)
        self.nsigma = float(nsigma)
        self.grow_mhz = float(grow_mhz)

    def params(self) -> dict[str, Any]:
        return {"variable": self.variable, "window_mhz": self.window_mhz,
                "nsigma": self.nsigma, "grow_mhz": self.grow_mhz}

    def __call__(self, ds: xr.Dataset) -> xr.Dataset:
        name = pick_variable(ds, self.variable)
        axis = frequency_axis(ds, uniform=False)
        window = max(3, int(round(self.window_mhz / axis.width_mhz)) | 1)
        if window >= axis.n:
            raise DatasetError(f"window_mhz = {self.window_mhz} spans the whole band "
                               f"({axis.n} channels); lower it")
        grow = int(round(self.grow_mhz / axis.width_mhz))
        data = frequency_chunked_once(ds[name])
        found = xr.apply_ufunc(narrow_rfi, data, input_core_dims=[["frequency"]],
                               output_core_dims=[["frequency"]], dask="parallelized",
                               output_dtypes=[bool],
                               kwargs={"window": window, "nsigma": self.nsigma, "grow": grow})
        found = found.transpose(*ds[name].dims)
        out = ds.copy()
        out[FLAG] = (ds[FLAG] | found) if FLAG in ds.variables else found
        out[FLAG].attrs["long_name"] = "bad channels (narrow RFI included)"
        record(out, self.name, __version__, self.params())
        return out

    def plot(self, before: xr.Dataset, after: xr.Dataset):
        """Spectrum before/after with the flagged channels marked."""
        from overtone_radio.plotting import before_after

        return before_after(before, after, self.variable, title=self.name)


def chebyshev_baseline(x: np.ndarray, t: np.ndarray, use: np.ndarray, order: int) -> np.ndarray:
    """``x`` (rows, n) minus, per row, the least-squares Chebyshev series of degree ``order``
    in ``t`` (n,) over the channels where ``use`` (rows, n) is True (float64; rows with
    fewer than order + 2 usable channels are returned unchanged)."""
    rows = x.reshape(-1, x.shape[-1]).astype(np.float64)
    use = np.broadcast_to(use, x.shape).reshape(rows.shape) & np.isfinite(rows)
    basis = np.polynomial.chebyshev.chebvander(t, order)  # (n, order + 1)
    out = rows.copy()
    shared = (use == use[:1]).all() if len(rows) else True
    groups = [np.arange(len(rows))] if shared else [np.array([i]) for i in range(len(rows))]
    for g in groups:
        m = use[g[0]]
        if m.sum() < order + 2:
            continue
        coef, *_ = np.linalg.lstsq(basis[m], rows[g][:, m].T, rcond=None)
        out[g] -= (basis @ coef).T
    return out.reshape(x.shape).astype(x.dtype if x.dtype in (np.float32, np.float64)
                                       else np.float64)


class PolynomialBaseline:
    """``polynomial-baseline``: subtract a Chebyshev baseline fitted on line-free channels
    (see the module docstring); lazy on dask input."""

    name = "polynomial-baseline"

    def __init__(self, variable: str | None = None, order: int = 3,
                 exclude_mhz: Sequence[Sequence[float]] = ()) -> None:
        if not isinstance(order, int) or not 0 <= order <= 30:
            raise ConfigError(f"order = {order!r}; give a whole number from 0 to 30")
        self.variable = variable
        self.order = order
        self.exclude_mhz = [list(r) for r in check_pairs(exclude_mhz, "exclude_mhz", "MHz")]

    def params(self) -> dict[str, Any]:
        return {"variable": self.variable, "order": self.order, "exclude_mhz": self.exclude_mhz}

    def __call__(self, ds: xr.Dataset) -> xr.Dataset:
        name = pick_variable(ds, self.variable)
        axis = frequency_axis(ds, uniform=False)
        f = axis.values_mhz
        t = 2 * (f - f.min()) / (f.max() - f.min()) - 1
        free = np.ones(axis.n, bool)
        for lo, hi in self.exclude_mhz:
            free &= ~((f >= lo) & (f <= hi))
        data = frequency_chunked_once(ds[name])
        use = xr.DataArray(free, dims="frequency")
        for m in (SOURCE_MASK, FLAG):
            mask = optional_mask(ds, m, data)
            if mask is not None:
                use = use & ~mask
        use = use.broadcast_like(data).transpose(*data.dims)
        if data.chunks is not None:
            use = use.chunk(dict(zip(data.dims, data.chunks)))
        cleaned = xr.apply_ufunc(
            lambda x, u: chebyshev_baseline(x, t, u, self.order), data, use,
            input_core_dims=[["frequency"], ["frequency"]], output_core_dims=[["frequency"]],
            dask="parallelized", output_dtypes=[data.dtype if data.dtype in
                                                (np.float32, np.float64) else np.float64])
        out = ds.copy()
        out[name] = cleaned.transpose(*ds[name].dims).assign_attrs(ds[name].attrs)
        record(out, self.name, __version__, self.params())
        return out

    def plot(self, before: xr.Dataset, after: xr.Dataset):
        """Spectrum before/after and the baseline removed."""
        from overtone_radio.plotting import before_after

        return before_after(before, after, self.variable, title=self.name)


class Smooth:
    """``smooth``: boxcar or Hanning smoothing along frequency, optionally decimated (see the
    module docstring). Lazy on dask input (``xarray.rolling``/``coarsen``)."""

    name = "smooth"

    def __init__(self, variable: str | None = None, kernel: str = "hanning", channels: int = 3,
                 decimate: bool = False) -> None:
        if kernel not in ("boxcar", "hanning"):
            raise ConfigError(f"kernel = {kernel!r}; allowed: 'boxcar', 'hanning'")
        if not isinstance(channels, int) or channels < 1:
            raise ConfigError(f"channels = {channels!r}; give a whole number >= 1 "
                              "(boxcar width; hanning always uses 3)")
        self.variable = variable
        self.kernel = kernel
        self.channels = channels if kernel == "boxcar" else 3
        self.decimate = bool(decimate)

    def params(self) -> dict[str, Any]:
        return {"variable": self.variable, "kernel": self.kernel, "channels": self.channels,
                "decimate": self.decimate}

    def __call__(self, ds: xr.Dataset) -> xr.Dataset:
        name = pick_variable(ds, self.variable)
        frequency_axis(ds, uniform=False)
        data = ds[name]
        if self.kernel == "boxcar":
            if self.decimate:
                smooth = data.coarsen(frequency=self.channels, boundary="trim").mean()
            else:
                smooth = data.rolling(frequency=self.channels, center=True).mean()
        else:
            weights = xr.DataArray([0.25, 0.5, 0.25], dims="window")
            smooth = data.rolling(frequency=3, center=True).construct("window").dot(weights)
            if self.decimate:  # centres on channels 1, 3, 5, ...: each sees 3 input channels
                smooth = smooth.isel(frequency=slice(1, None, 2))
        smooth = smooth.assign_attrs(data.attrs).transpose(*data.dims)
        out = ds.copy() if not self.decimate else xr.Dataset(
            {k: v for k, v in ds.data_vars.items() if "frequency" not in v.dims},
            coords={k: v for k, v in ds.coords.items() if "frequency" not in v.dims},
            attrs=ds.attrs)
        if self.decimate:
            out = out.assign_coords(frequency=smooth["frequency"].assign_attrs(
                ds["frequency"].attrs))
            others = [k for k, v in ds.data_vars.items() if "frequency" in v.dims and k != name]
            if others:
                out.attrs["dropped_by_smooth"] = ", ".join(others)
        out[name] = smooth
        record(out, self.name, __version__, self.params())
        return out

    def plot(self, before: xr.Dataset, after: xr.Dataset):
        """Spectrum before and after smoothing."""
        from overtone_radio.plotting import before_after

        return before_after(before, after, self.variable, title=self.name)


