"""Automatic protection of strong signals (HiFAST's step, arXiv 2411.13016 sec. 3).

Channels holding emission nobody masked (an uncatalogued galaxy, a transient line) must be
protected from the FFT filter too, or the filter takes the part of their flux that falls in
its delay windows. HiFAST finds them in a smoothed "guide image" (time x frequency):

1. the continuum of each spectrum is removed: the median of each block of ``block``
   channels (several ripple periods, so the ripple averages out), linear between block
   centres and extrapolated linearly beyond the outer ones;
2. the residual image is smoothed with a Gaussian of FWHM ``fwhm`` = (spectra along
   ``time``, channels), HiFAST's 5 x 3, cut at 3 sigma;
3. its noise s is 1.4826 x the median absolute deviation per spectrum (the ripple's own
   variance is part of s, so the ripple does not detect itself in long integrations);
4. runs of at least ``min_channels`` channels above ``nsigma`` s are protected, extended by
   ``extend`` channels on each side (HiFAST: 3 s, 20 channels, 20 channels).

The smoothing runs along ``time`` only (never across polarizations or beams), and on dask
data through ``map_overlap`` with enough overlap that any chunking gives the in-memory result.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy.ndimage import gaussian_filter
from scipy.stats import median_abs_deviation

from overtone_radio.protect import runs_of_rows

FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))
TRUNCATE = 3.0
GUIDE_FWHM = (5.0, 3.0)  # HiFAST's guide-image smoothing: spectra along time, channels


def detect_signals(x: np.ndarray, *, nsigma: float = 3.0, fwhm: tuple[float, float] = GUIDE_FWHM,
                   min_channels: int = 20, extend: int = 20, block: int = 512,
                   ignore: np.ndarray | None = None) -> np.ndarray:
    """Boolean mask, shaped like ``x`` (..., time, frequency), of the channels holding strong
    signal (see the module docstring); the Gaussian smooths along the last two axes only.
    ``ignore`` (broadcastable to ``x``) marks channels left out of the statistics (flags,
    RFI, already protected sources); NaN channels are left out as well. Neither is ever
    detected. A spectrum whose noise estimate is 0 (more than half its channels constant)
    detects nothing. Block levels and the noise are medians of every 4th channel."""
    shape = x.shape
    n = shape[-1]
    image = x.reshape((1,) * (2 - x.ndim) + shape) if x.ndim < 2 else x
    bad = ~np.isfinite(image)
    if ignore is not None:
        bad = bad | np.broadcast_to(ignore, shape).reshape(image.shape)
    any_bad = bool(bad.any())
    data = image.astype(np.float32)
    if any_bad:
        data[bad] = np.nan
    rows = data.reshape(-1, n)
    block = max(1, min(block, n))
    nb = n // block
    med = _nanmedian(rows[:, :nb * block].reshape(len(rows), nb, block)[:, :, ::4], axis=2)
    if any_bad:  # a fully bad block takes its neighbours' level
        for r in np.flatnonzero(~np.isfinite(med).all(axis=1)).tolist():
            ok = np.isfinite(med[r])
            med[r] = np.interp(np.arange(nb), np.flatnonzero(ok), med[r][ok]) if ok.any() else 0.0
    if nb == 1:
        rows -= med
    else:  # linear through the block centres, extrapolated beyond the outer ones
        pos = (np.arange(n) + 0.5) / block - 0.5
        lo = np.clip(np.floor(pos).astype(np.int64), 0, nb - 2)
        slope = np.diff(med, axis=1)[:, lo]
        slope *= (pos - lo).astype(np.float32)
        rows -= med[:, lo]
        rows -= slope
    resid = rows.reshape(image.shape)  # rows is this function's own copy
    if any_bad:
        resid[bad] = 0.0
    sigma = (0.0,) * (image.ndim - 2) + (fwhm[0] * FWHM_TO_SIGMA, fwhm[1] * FWHM_TO_SIGMA)
    smooth = gaussian_filter(resid, sigma=sigma, mode="nearest", truncate=TRUNCATE).reshape(-1, n)
    flat_bad = bad.reshape(-1, n)
    sample = smooth[:, ::4]
    if any_bad:
        sample = np.where(flat_bad[:, ::4], np.nan, sample)
    centre = _nanmedian(sample, axis=1)
    if any_bad:  # NaN-safe, warning-free (scipy's nan_policy warns on all-NaN rows)
        noise = 1.482602218505602 * _nanmedian(np.abs(sample - centre[:, None]), axis=1)
    else:
        noise = median_abs_deviation(sample, axis=1, scale="normal")
    limit = np.where(noise > 0, centre + nsigma * noise, np.inf)
    above = smooth > limit[:, None]
    if any_bad:
        above &= ~flat_bad
    row, a, b = runs_of_rows(above)
    long = b - a >= min_channels
    row, a, b = row[long], np.maximum(a[long] - extend, 0), np.minimum(b[long] + extend, n)
    mask = np.zeros(above.shape, bool)
    lengths = b - a
    offset = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    mask[np.repeat(row, lengths), np.repeat(a, lengths) + offset] = True
    return mask.reshape(shape)


#: HiFAST's channel counts at FAST's 7.63 kHz channels, as widths in MHz: guide smoothing
#: 3 channels, shortest run 20, extension 20, continuum blocks 512.
SMOOTH_MHZ, MIN_MHZ, EXTEND_MHZ, BLOCK_MHZ = 0.023, 0.15, 0.15, 3.9


def channel_settings(step_mhz: float | None) -> dict:
    """:func:`detect_signals` keyword arguments for channels of ``step_mhz`` (MHz) from the
    physical widths above; HiFAST's channel counts when ``step_mhz`` is None."""
    if step_mhz is None:
        return {}
    step = abs(step_mhz)
    return {"fwhm": (GUIDE_FWHM[0], max(1.0, SMOOTH_MHZ / step)),
            "min_channels": max(3, int(round(MIN_MHZ / step))),
            "extend": int(round(EXTEND_MHZ / step)),
            "block": max(16, int(round(BLOCK_MHZ / step)))}


def detect_mask(data: xr.DataArray, known: xr.DataArray | None, nsigma: float,
                step_mhz: float | None = None) -> xr.DataArray:
    """:func:`detect_signals` over a spectra DataArray: smoothed along ``time`` (when that
    dim exists) within each polarization/beam, with ``known`` protected channels left out;
    lazy on dask data, chunked like ``data``. ``frequency`` must be one chunk. With
    ``step_mhz`` (the channel width) the widths are physical (:func:`channel_settings`).
    Any number of spectra works, one included: a time axis shorter than the Gaussian's reach
    is smoothed in one piece."""
    time = ["time"] if "time" in data.dims else []
    dims = [d for d in data.dims if d not in ("time", "frequency")] + time + ["frequency"]
    image = data.transpose(*dims)
    if known is not None:
        known = known.broadcast_like(image).transpose(*dims)

    settings = channel_settings(step_mhz)
    radius = int(TRUNCATE * settings.get("fwhm", GUIDE_FWHM)[0] * FWHM_TO_SIGMA + 0.5)

    def run(x: np.ndarray, ignore: np.ndarray | None = None) -> np.ndarray:
        return detect_signals(x, nsigma=nsigma, ignore=ignore, **settings)

    in_memory = image.chunks is None
    if in_memory and time and image.sizes["time"] >= 128:  # blocks of time on the cores
        image = image.chunk({"time": 64})
    if image.chunks is None:
        found = run(image.values, None if known is None else np.asarray(known.values))
    else:
        import dask.array as dsa

        chunks = image.chunks
        if time and image.sizes["time"] <= 2 * radius:  # too few spectra to overlap: one piece
            image = image.chunk({"time": -1})
        arrays = [image.data]
        if known is not None:
            arrays.append(known.chunk(dict(zip(dims, image.chunks))).data)
        if time and len(image.chunks[-2]) > 1:  # dask widens chunks shorter than the overlap
            found = dsa.map_overlap(run, *arrays, depth={image.ndim - 2: radius},
                                    boundary="none", dtype=bool,
                                    meta=np.empty((0,) * image.ndim, bool))
        else:
            found = dsa.map_blocks(run, *arrays, dtype=bool,
                                   meta=np.empty((0,) * image.ndim, bool))
        found = found.compute(scheduler="threads") if in_memory else found.rechunk(chunks)
    return xr.DataArray(found, dims=dims, coords=image.coords).transpose(*data.dims)


def _nanmedian(a: np.ndarray, axis: int) -> np.ndarray:
    """np.nanmedian with NaN for all-NaN slices and no warning (``warnings`` filters are not
    thread-safe, so the all-NaN slices are filled rather than their warning silenced)."""
    empty = np.isnan(a).all(axis=axis, keepdims=True)
    if not empty.any():
        return np.median(a, axis=axis) if not np.isnan(a).any() else np.nanmedian(a, axis=axis)
    out = np.nanmedian(np.where(empty, 0.0, a), axis=axis)
    out[np.squeeze(empty, axis=axis)] = np.nan
    return out
