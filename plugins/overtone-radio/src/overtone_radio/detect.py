"""Automatic protection of strong signals (HiFAST's step, arXiv 2411.13016 sec. 3).

Channels holding emission nobody masked (an uncatalogued galaxy, a transient line) must be
protected from the FFT filter too, or the filter takes the part of their flux that falls in
its delay windows. HiFAST finds them in a smoothed "guide image": here, per batch of spectra,

1. the continuum is removed: the median of each block of ``block`` channels (several ripple
   periods, so the ripple averages out), interpolated linearly between block centres;
2. the residual is smoothed with a Gaussian of FWHM ``fwhm`` (spectra, channels), HiFAST's
   5 x 3;
3. its noise s is 1.4826 x the median absolute deviation per spectrum (the ripple's own
   variance is part of s, so the ripple does not detect itself in long integrations);
4. runs of at least ``min_channels`` channels above ``nsigma`` s are protected, extended by
   ``extend`` channels on each side (HiFAST: 3 s, 20 channels, 20 channels).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.ndimage import gaussian_filter

from overtone_radio.protect import runs_of_rows

FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


def detect_signals(x: np.ndarray, *, nsigma: float = 3.0, fwhm: tuple[float, float] = (5.0, 3.0),
                   min_channels: int = 20, extend: int = 20, block: int = 512,
                   ignore: np.ndarray | None = None) -> np.ndarray:
    """Boolean mask (rows, n) of the channels of ``x`` (rows, n) holding strong signal (see the
    module docstring); ``ignore`` (same shape or (n,)) marks channels left out of the
    statistics (flags, RFI, already protected sources); NaN channels are left out as well and
    never detected. Block levels and the noise are medians of every 4th channel (128 and
    thousands of samples: plenty); the Gaussian is cut at 3 sigma."""
    rows, n = x.shape
    bad = ~np.isfinite(x)
    if ignore is not None:
        bad = bad | ignore
    any_bad = bool(bad.any())
    data = np.where(bad, np.nan, x).astype(np.float32) if any_bad else x.astype(np.float32, copy=False)
    block = max(1, min(block, n))
    nb = n // block
    median = _nanmedian if any_bad else np.median
    med = median(data[:, :nb * block].reshape(rows, nb, block)[:, :, ::4], axis=2)
    # continuum: linear between block centres, constant beyond the first and last
    pos = np.clip((np.arange(n) + 0.5) / block - 0.5, 0, nb - 1)
    lo = np.minimum(pos.astype(np.int64), nb - 1)
    hi = np.minimum(lo + 1, nb - 1)
    w = (pos - lo).astype(np.float32)
    if any_bad:  # a fully bad block takes its neighbours' level
        for r in np.flatnonzero(~np.isfinite(med).all(axis=1)).tolist():
            ok = np.isfinite(med[r])
            med[r] = np.interp(np.arange(nb), np.flatnonzero(ok), med[r][ok]) if ok.any() else 0.0
    resid = data - (med[:, lo] * (1 - w) + med[:, hi] * w)
    if any_bad:
        resid[bad] = 0.0
    smooth = gaussian_filter(resid, sigma=(fwhm[0] * FWHM_TO_SIGMA, fwhm[1] * FWHM_TO_SIGMA),
                             mode="nearest", truncate=3.0)
    sample = smooth[:, ::4]
    if any_bad:
        sample = np.where(bad[:, ::4], np.nan, sample)
    centre = median(sample, axis=1)
    noise = 1.4826 * median(np.abs(sample - centre[:, None]), axis=1)
    above = smooth - centre[:, None] > nsigma * noise[:, None]
    if any_bad:
        above &= ~bad
    row, a, b = runs_of_rows(above)
    long = b - a >= min_channels
    row, a, b = row[long], np.maximum(a[long] - extend, 0), np.minimum(b[long] + extend, n)
    mask = np.zeros((rows, n), bool)
    lengths = b - a
    offset = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    mask[np.repeat(row, lengths), np.repeat(a, lengths) + offset] = True
    return mask


def _nanmedian(a: np.ndarray, axis: int) -> np.ndarray:
    """np.nanmedian without its all-NaN warning (an all-flagged spectrum detects nothing)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(a, axis=axis)
