"""What the FFT filter needs to know before it runs, found from the data: telescope presets,
junk band-edge channels, lines nobody masked, and the delays of the standing waves.

Everything here works on one *guide spectrum*: the mean of the first spectra of a dataset
(at most ``GUIDE_SPECTRA``), so it costs one read of those spectra and one FFT, whatever the
size of the observation. All widths are given in physical units (MHz, us) and converted to
channels or delay bins for each dataset.

Ripple search (:func:`find_ripple_delays`): the guide spectrum, protected channels filled by
linear interpolation and a cubic (Chebyshev, least squares) removed, is tapered with a Hann
window and transformed; A(tau) = |rfft|. Over ``floor_us`` of delay the running median
m(tau) of A is the local noise floor: for noise A is Rayleigh distributed with median
sigma_R sqrt(2 ln 2), so P(A > t) = exp(-t^2 / (2 sigma_R^2)). A peak is a ripple when it
exceeds t = sigma_R sqrt(2 ln(M / p)) over the M delay bins searched: the expected number of
noise peaks anywhere in the search is then ``p`` (default 0.001).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import scipy.fft as sfft
import xarray as xr
from scipy.ndimage import median_filter
from scipy.signal import find_peaks

from overtone_radio.spectra import FrequencyAxis, batch_dims

#: Delay windows [low, high] in us per telescope. FAST: the ~1.09 MHz ripple, its harmonic
#: and the 0.039 MHz ripple of HiFAST's CLI default (25-26 us); GBT: the ripples near 0.43
#: and 0.62 us of L-band spectra.
PRESETS: dict[str, tuple[tuple[float, float], ...]] = {
    "fast": ((0.88, 0.97), (1.78, 1.92), (25.0, 26.0)),
    "gbt": ((0.40, 0.46), (0.58, 0.66)),
}
#: Spectra averaged into the guide spectrum.
GUIDE_SPECTRA = 16


def preset_name(telescope: str | None) -> str | None:
    """The preset for a telescope name as FITS headers spell it (``FAST``, ``NRAO_GBT``,
    ``GBT``, ``Green Bank Telescope``; any case), or ``None``."""
    if not telescope:
        return None
    t = str(telescope).lower()
    if "fast" in t:
        return "fast"
    if "gbt" in t or "green bank" in t:
        return "gbt"
    return None


def dataset_telescope(ds: xr.Dataset) -> str | None:
    """The telescope a dataset says it comes from: ``attrs['telescope']`` or
    ``attrs['TELESCOP']`` (any case), else the first value of a ``telescope`` variable or
    coordinate; ``None`` when it says nothing."""
    for key, value in ds.attrs.items():
        if str(key).lower() in ("telescope", "telescop") and value:
            return str(value)
    for key in ("telescope", "TELESCOP"):
        if key in ds.variables:
            values = np.asarray(ds[key].values).ravel()
            if values.size:
                return str(values[0]).strip()
    return None


def guide_spectrum(data: xr.DataArray, protect: xr.DataArray | None = None) -> np.ndarray:
    """Mean of the first ``GUIDE_SPECTRA`` spectra of ``data`` (float64, (frequency,)),
    NaN where every one of them is NaN or protected. Reads only those spectra."""
    others = batch_dims(data)
    n = data.sizes["frequency"]
    arr = data.transpose(*others, "frequency").data
    arr = arr.reshape(-1, n) if arr.ndim != 2 else arr
    x = np.asarray(arr[:GUIDE_SPECTRA])  # a dask array computes these rows only
    bad = ~np.isfinite(x)
    if protect is not None:
        p = protect.transpose(*[d for d in (*others, "frequency") if d in protect.dims]).data
        if p.ndim == 1:
            bad = bad | np.asarray(p, bool)[None, :]
        elif p.shape == data.transpose(*others, "frequency").shape:
            bad = bad | np.asarray(p.reshape(-1, n)[:GUIDE_SPECTRA], bool)
        else:  # other broadcasting: the general (slower) way
            full = protect.broadcast_like(data).transpose(*others, "frequency").data
            bad = bad | np.asarray(full.reshape(-1, n)[:GUIDE_SPECTRA], bool)
    count = len(x) - bad.sum(axis=0)
    total = np.where(bad, 0, x).sum(axis=0, dtype=np.float64)
    mean = total / np.maximum(count, 1)
    mean[count == 0] = np.nan
    return mean


def fill_gaps(x: np.ndarray, bad: np.ndarray) -> np.ndarray:
    """``x`` with the ``bad`` (and NaN) channels replaced by linear interpolation between the
    nearest good ones (constant beyond the outer ones)."""
    bad = bad | ~np.isfinite(x)
    if not bad.any():
        return x
    good = np.flatnonzero(~bad)
    if good.size == 0:
        return np.zeros_like(x)
    out = x.copy()
    out[bad] = np.interp(np.flatnonzero(bad), good, x[good])
    return out


def junk_edges(x: np.ndarray, step_mhz: float, *, window_mhz: float = 0.05,
               max_fraction: float = 0.15, ratio: float = 1.5, spike_sigma: float = 6.0
               ) -> tuple[int, int]:
    """How many channels at the low-index and high-index ends of the spectrum ``x`` are junk.

    The channel-to-channel scatter s(i) = running median of |x(i+1) - x(i)| over
    ``window_mhz`` (at least 16 channels) is compared with its median s0 over the central
    half of the band: an end is junk up to the first stretch of a quarter window, within
    ``max_fraction`` of the band, where s stays within a factor ``ratio`` of s0 (gain
    roll-off raises the noise of calibrated data and lowers that of raw counts). Beyond
    that, channels within one window of the junk (or of the band edge) whose distance from
    the running median exceeds ``spike_sigma`` noise sigma (sigma = s0 / 0.954, the median
    |difference| of white noise being 0.954 sigma) are junk too, with everything outside
    them (spikes in the first and last channels, as GBTIDL spectra have).
    """
    n = x.size
    w = max(64, int(round(window_mhz / abs(step_mhz))))
    zone = int(max_fraction * n)
    x = fill_gaps(x, np.zeros(n, bool))
    d = np.abs(np.diff(x))
    s0 = float(np.median(d[n // 4: 3 * n // 4: 2]))  # every 2nd: independent pairs
    if zone < 2 * w or s0 == 0:
        return 0, 0
    sigma = s0 / 0.954

    quarter = w // 4

    def first_clean(d: np.ndarray) -> int | None:
        """Start of the first stretch of w / 4 in-family channels of the scatter profile of
        ``d`` = |x(i+1) - x(i)|, or None. The running median is taken over a prefix of ``d``
        that doubles until such a stretch lies where the prefix's median equals the whole
        one's (more than a window from its end; a median is a selection, so equal there)."""
        size = min(d.size, 8 * w)
        while True:
            prof = median_filter(d[:size], size=w, mode="mirror")
            valid = prof.size if size == d.size else prof.size - w
            bad = (prof[:valid] > ratio * s0) | (prof[:valid] < s0 / ratio)
            csum = np.concatenate([[0], np.cumsum(bad)])
            run = csum[quarter:] - csum[:-quarter]  # bad channels in each stretch of w / 4
            clean = np.flatnonzero(run == 0)
            if clean.size:
                return int(clean[0])
            if size == d.size:
                return None
            size = min(d.size, 2 * size)

    def one_end(seg: np.ndarray) -> int:
        """Junk channels at the start of ``seg`` (the band read from one end inward)."""
        clean = first_clean(np.abs(np.diff(seg)))
        cut = min(zone if clean is None else clean, zone)
        look = seg[: min(cut + w, seg.size)]
        level = median_filter(seg[: min(cut + 2 * w, seg.size)], size=w, mode="mirror")[:look.size]
        spikes = np.flatnonzero(np.abs(look - level) > spike_sigma * sigma)
        if spikes.size:
            cut = max(cut, int(spikes.max()) + 1)
        return cut

    span = min(n, zone + 3 * w)
    return one_end(x[:span]), one_end(x[::-1][:span])


def edge_mask(n: int, ends: tuple[int, int]) -> np.ndarray:
    """Boolean (n,) mask of the first ``ends[0]`` and last ``ends[1]`` channels."""
    mask = np.zeros(n, bool)
    mask[: ends[0]] = True
    if ends[1]:
        mask[n - ends[1]:] = True
    return mask


def guide_lines(x: np.ndarray, axis: FrequencyAxis, ignore: np.ndarray, *, nsigma: float = 5.0,
                min_mhz: float = 0.05, extend_mhz: float = 0.15, smooth_mhz: float = 0.023,
                block_mhz: float = 8.0) -> np.ndarray:
    """Channels of the guide spectrum holding lines (emission or absorption) nobody masked,
    HiFAST's detection rule on one spectrum with its widths in MHz: the continuum (medians
    of ``block_mhz`` blocks, linear between block centres and beyond the outer ones) is removed, the residual is
    smoothed by a boxcar of ``smooth_mhz``, 4x and 16x that (narrow lines, and the faint
    wings of broad ones), its noise at each scale is 1.4826 MAD
    (``scipy.stats.median_abs_deviation``), and runs of at least ``min_mhz`` (and twice the
    boxcar) beyond ``nsigma`` noise (either sign) are lines, widened by ``extend_mhz`` each
    side; the continuum is recomputed without the lines found, up to 4 passes (HiFAST:
    3 channels, 20 channels, 20 channels and 512-channel blocks at FAST's 7.63 kHz, i.e.
    0.023, 0.15, 0.15 and 3.9 MHz; the blocks here are 8 MHz, so that a galaxy 3 MHz wide
    does not set its block's level). ``ignore`` channels (and NaN) are never lines and are
    left out of every statistic."""
    from scipy.ndimage import uniform_filter1d
    from scipy.stats import median_abs_deviation

    from overtone_radio.protect import runs

    if axis.step_mhz < 0:  # blocks are laid from the lowest frequency: mirror-symmetric
        up = FrequencyAxis(axis.values_mhz[::-1], -axis.step_mhz)
        return guide_lines(x[::-1], up, ignore[::-1], nsigma=nsigma, min_mhz=min_mhz,
                           extend_mhz=extend_mhz, smooth_mhz=smooth_mhz,
                           block_mhz=block_mhz)[::-1]
    n = x.size
    step = axis.width_mhz
    bad = ignore | ~np.isfinite(x)
    y = fill_gaps(x, bad)
    block = min(n, max(16, int(round(block_mhz / step))))
    nb = max(1, n // block)
    centres = (np.arange(nb) + 0.5) * block
    extend = int(round(extend_mhz / step))
    # three smoothing scales: narrow lines, and broad faint ones (a galaxy's wings) whose
    # channels are each below the noise; the shortest run is twice the smoothing width
    scales = [(max(1, int(round(w / step))), max(1, int(round(max(min_mhz, 2 * w) / step))))
              for w in (smooth_mhz, 4 * smooth_mhz, 16 * smooth_mhz)]
    scales = [sc for sc in scales if 4 * sc[1] < n]
    out = np.zeros(n, bool)
    noise: dict[int, tuple[float, float]] = {}  # per scale, from the first pass
    for _ in range(4):  # a line wider than a block biases its block's median: mask, redo
        skip = (out | bad)[: nb * block].reshape(nb, block)
        blocks = y[: nb * block].reshape(nb, block)
        med = np.median(blocks, axis=1)
        filled = np.ones(nb, bool)
        for i in np.flatnonzero(skip.any(axis=1)).tolist():  # blocks holding lines or gaps
            keep = blocks[i][~skip[i]]
            filled[i] = keep.size >= block // 2  # else the line sets the level: interpolate
            med[i] = np.median(keep) if filled[i] else np.nan
        if not filled.any():
            break
        cont = _linear(np.arange(n), centres[filled], med[filled])
        found = np.zeros(n, bool)
        detrended = y - cont
        usable = ~bad & ~out
        for width, longest in scales:
            resid = uniform_filter1d(detrended, width, mode="mirror")
            if width not in noise:
                thin = max(1, width // 2)  # smoothed neighbours are alike: every width/2-th
                good = resid[usable][::thin]
                if good.size >= 16:
                    centre = float(np.median(good))
                    noise[width] = (centre, float(median_abs_deviation(
                        good, scale="normal", center=lambda a, axis, c=centre: np.float64(c))))
                else:
                    noise[width] = (0.0, 0.0)
            centre, sigma = noise[width]
            if sigma == 0:
                continue
            for a, b in runs((np.abs(resid - centre) > nsigma * sigma) & ~bad):
                if b - a >= longest:
                    found[max(0, a - extend): b + extend] = True
        if not (found & ~out).any():
            break
        out |= found
    return out & ~ignore


def _linear(x: np.ndarray, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """np.interp, but continued linearly (not held constant) beyond the outer points."""
    y = np.interp(x, xp, fp)
    if xp.size >= 2:
        lo, hi = x < xp[0], x > xp[-1]
        y[lo] = fp[0] + (x[lo] - xp[0]) * (fp[1] - fp[0]) / (xp[1] - xp[0])
        y[hi] = fp[-1] + (x[hi] - xp[-1]) * (fp[-1] - fp[-2]) / (xp[-1] - xp[-2])
    return y


@functools.lru_cache(maxsize=8)
def _hann(n: int) -> np.ndarray:
    """``np.hanning(n)``, computed once per length (read-only)."""
    w = np.hanning(n)
    w.flags.writeable = False
    return w


def find_ripple_delays(x: np.ndarray, axis: FrequencyAxis, *, min_us: float = 0.2,
                       max_us: float = 30.0, p_false: float = 1e-3, floor_us: float = 0.5,
                       widen_us: float = 0.02,
                       skip: Sequence[tuple[float, float]] = ()) -> list[tuple[float, float]]:
    """Delay windows [tau - w, tau + w] (us) around the significant peaks of the guide
    spectrum's delay spectrum (see the module docstring), strongest first; ``w`` is
    ``widen_us`` but at least 2 delay bins. Peaks inside ``skip`` windows are left out.
    ``x`` must have no NaN (fill them first)."""
    n = x.size
    bin_us = 1.0 / (n * axis.width_mhz)
    t = np.linspace(-1.0, 1.0, n)
    every = max(1, n // 4096)  # a cubic is well fitted from 4,096 channels
    coef = np.polynomial.chebyshev.chebfit(t[::every], x[::every], 3)
    y = x - np.polynomial.chebyshev.chebval(t, coef)
    amp = np.abs(sfft.rfft((y * _hann(n)).astype(np.float32)))
    lo = max(4, int(np.ceil(min_us / bin_us)))
    hi = min(amp.size - 1, int(max_us / bin_us))
    if hi - lo < 16:
        return []
    # the floor: medians of blocks of floor_us (at least 15 bins), linear between centres
    size = max(15, int(round(floor_us / bin_us)))
    part = amp[lo:hi]
    nb = max(1, part.size // size)
    med = np.median(part[: nb * size].reshape(nb, size), axis=1)
    floor = np.interp(np.arange(part.size), (np.arange(nb) + 0.5) * size, med)
    ratio = part / np.where(floor > 0, floor, np.inf)
    # median of a Rayleigh variable = sigma_R sqrt(2 ln 2)
    limit = np.sqrt(np.log((hi - lo) / p_false) / np.log(2.0))
    peaks, props = find_peaks(ratio, height=limit, distance=max(1, int(widen_us / bin_us)))
    w = max(widen_us, 2 * bin_us)
    found = []
    for i in peaks[np.argsort(-props["peak_heights"])]:
        tau = (lo + i) * bin_us
        if any(a <= tau <= b for a, b in skip):
            continue
        found.append((max(bin_us, tau - w), tau + w))
    return found
