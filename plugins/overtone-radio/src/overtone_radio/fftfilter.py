"""The FFT standing-wave filter of arXiv 2411.13016 (HiFAST III), per spectrum.

For each spectrum x(nu) on a uniform grid of N channels of width dnu:

1. protected channels (``source_mask``, ``flag``, NaN) are substituted by a stretch of the
   same spectrum a whole number of ripple periods away (:mod:`overtone_radio.protect`);
2. the straight line through the means of the first and last 16 channels is taken out (in
   the delay domain, from its closed-form DFT), so the band's periodic extension has no step
   (a step would leak into every delay bin);
3. X(tau) = rfft(x) with tau = rfftfreq(N, dnu) (microseconds for dnu in MHz);
4. in each delay window (default 0.88-0.97 us: the ~1.09 MHz ripple of FAST, and its
   harmonic at 1.78-1.92 us) the peak bin is found; bins near it are kept (see thresholds);
5. out = irfft(X - kept bins) = x - ripple; at substituted channels the original values are
   put back, so out = x - ripple there too and sources keep their flux.

Thresholds: ``"significance"`` (default) is a detection test per window: the ripple is there
when the peak |X| > nsigma * s, where s is the noise scale of |X| measured per spectrum as
median(|X|) / sqrt(ln 4) over a reference delay range (|X| of white noise is Rayleigh
distributed with median s sqrt(2 ln 2)); with nsigma = 5 a window of 45 noise bins passes
with probability 45 exp(-12.5) = 2e-4. When it is there, every bin within +-``keep_bins`` of
the peak is kept, including the leakage bins below the noise (a ripple that is not periodic
over the band spreads as 1/k bins around its peak, whatever the bandwidth, so this width is in
bins; +-10 bins, 0.02 us over 500 MHz, leave about 3% of its amplitude, mostly within a few
MHz of the band edges, while removing about 0.1% of the noise power of a raw spectrum).
``"hifast"`` reproduces HiFAST's rule: bins within +-``hifast_bins`` of the peak whose
|X| > factor * median over all tau of the mean |X| over the spectra of the chunk (factor 1.4
per spectrum in HiFAST); on pure noise that threshold is about 1.4 sigma and some bins always
pass.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.fft as sfft
import xarray as xr
from overtone import ConfigError

from overtone_radio import __version__
from overtone_radio.detect import detect_mask
from overtone_radio.protect import substitute
from overtone_radio.spectra import (
    MILKY_WAY_MHZ,
    FrequencyAxis,
    batch_dims,
    frequency_axis,
    frequency_chunked_once,
    pick_variable,
    protection_masks,
    record,
)

DEFAULT_WINDOWS_US = ((0.88, 0.97), (1.78, 1.92))
EDGE_CHANNELS = 16


def _check_windows(windows: Sequence[Sequence[float]], name: str = "windows_us") -> list[tuple[float, float]]:
    out = []
    for w in windows:
        if len(w) != 2 or not 0 <= float(w[0]) < float(w[1]):
            raise ConfigError(f"{name}: each window must be [low, high] with 0 <= low < high (us), "
                              f"got {list(w)}")
        out.append((float(w[0]), float(w[1])))
    if not out:
        raise ConfigError(f"{name}: give at least one delay window [low, high] in microseconds")
    return out


def window_bins(axis: FrequencyAxis, windows: Sequence[tuple[float, float]]) -> np.ndarray:
    """Indices of the rfft bins whose delay lies inside any of ``windows`` (us)."""
    tau = axis.delays_us()
    inside = np.zeros(tau.size, bool)
    for lo, hi in windows:
        inside |= (tau >= lo) & (tau <= hi)
    inside[0] = False
    return np.flatnonzero(inside)


def _pocketfft_c2r() -> Any:
    """scipy's pocketfft binding ``c2r(a, axes, lastsize, forward, inorm, out, nthreads)``,
    if this scipy has it and it writes into ``out``; else ``None``."""
    try:
        from scipy.fft._pocketfft import pypocketfft

        probe = np.zeros((1, 4), np.float32)
        got = pypocketfft.c2r(np.ones((1, 3), np.complex64), (1,), 4, False, 2, probe, 1)
        return pypocketfft.c2r if got is probe and probe[0, 0] == 1.0 else None
    except Exception:  # a private binding: any change in it means the public path
        return None


_C2R = _pocketfft_c2r()


def irfft_into(spec: np.ndarray, dest: np.ndarray, workers: int) -> None:
    """``dest[:] = irfft(spec, n=dest.shape[1], axis=1)``, written straight into ``dest``
    through scipy's pocketfft binding when it allows (saving a temporary and a copy of the
    batch), else through ``scipy.fft.irfft``."""
    if _C2R is not None and spec.dtype == np.result_type(dest.dtype, np.complex64) \
            and dest.flags.c_contiguous:
        _C2R(spec, (1,), dest.shape[1], False, 2, dest, workers)
    else:
        dest[:] = sfft.irfft(spec, n=dest.shape[1], axis=1, workers=workers)


@dataclass(frozen=True)
class _Plan:
    """What every batch of one band shares: bin ranges, thresholds and the ripple period."""

    n: int
    spans: list[tuple[int, int]]
    half: int
    ref: np.ndarray
    threshold: str
    nsigma: float
    factor: float
    period_ch: float
    ctype: type


def _plan(n: int, step_mhz: float, windows_us: Sequence[tuple[float, float]], threshold: str,
          nsigma: float, factor: float, reference_us: tuple[float, float], keep_bins: int,
          hifast_bins: int, period_mhz: float | None, dtype: np.dtype) -> _Plan:
    bin_us = 1.0 / (n * step_mhz)  # delay resolution
    nbins = n // 2 + 1
    spans = []
    for lo, hi in windows_us:
        a, b = max(1, int(np.ceil(lo / bin_us))), min(nbins - 1, int(np.floor(hi / bin_us)))
        if b < a:
            raise ConfigError(f"delay window [{lo}, {hi}] us holds no delay bin (resolution "
                              f"{bin_us:.3g} us, delays up to {(nbins - 1) * bin_us:.3g} us)")
        spans.append((a, b + 1))
    ref_lo, ref_hi = int(np.ceil(reference_us[0] / bin_us)), int(reference_us[1] / bin_us)
    ref = np.arange(max(ref_lo, 1), min(ref_hi, nbins - 1) + 1)
    if threshold == "significance" and ref.size < 32:
        raise ConfigError(f"reference_us = {list(reference_us)} holds only {ref.size} delay bins "
                          f"(delays run to {(nbins - 1) * bin_us:.3g} us); widen it")
    if ref.size > 1024:
        ref = ref[:: ref.size // 1024]
    if period_mhz is None:
        lo, hi = windows_us[0]
        period_mhz = 2.0 / (lo + hi)
    return _Plan(n=n, spans=spans, half=keep_bins if threshold == "significance" else hifast_bins,
                 ref=ref, threshold=threshold, nsigma=nsigma, factor=factor,
                 period_ch=period_mhz / step_mhz,
                 ctype=np.complex64 if dtype == np.float32 else np.complex128)


def _clean_batch(chunk: np.ndarray, p: np.ndarray | None, channels: np.ndarray | None,
                 dest: np.ndarray, plan: _Plan, workers: int) -> np.ndarray:
    """Filter the spectra ``chunk`` (rows, n) into ``dest``; returns the bins removed per row.
    ``p``: protected channels per row; ``channels``: protected in every row."""
    n, nbins = plan.n, plan.n // 2 + 1
    empty = np.zeros(len(chunk), bool)
    changed: tuple[np.ndarray | None, np.ndarray] = (None, np.zeros(0, np.int64))
    work = chunk
    if p is None and channels is not None:
        p, channels = np.broadcast_to(channels, chunk.shape), None
    if p is not None and ((p[:1] if p.strides[0] == 0 else p).any() or channels is not None):
        work, empty, changed = substitute(chunk, p, plan.period_ch, out=dest, channels=channels)
    spec = sfft.rfft(work, axis=1, workers=workers)
    nan_rows = np.flatnonzero(~np.isfinite(spec[:, 0]))  # a NaN makes its whole row NaN
    if nan_rows.size:
        full = np.zeros(chunk.shape, bool)
        full[nan_rows] = ~np.isfinite(chunk[nan_rows])
        if p is not None:
            full[nan_rows] |= p[nan_rows]
        if channels is not None:
            full[nan_rows] |= channels
        if work is chunk:
            np.copyto(dest, chunk)
            work = dest
        redo, redo_empty, (redo_r, redo_pos) = substitute(chunk, full, plan.period_ch, rows=nan_rows)
        work[nan_rows] = redo[nan_rows]
        empty[nan_rows] = redo_empty[nan_rows]
        rows, pos = changed
        if rows is None:
            rows, pos = np.repeat(np.arange(len(chunk)), pos.size), np.tile(pos, len(chunk))
        others = ~np.isin(rows, nan_rows)
        changed = (np.concatenate([rows[others], redo_r]), np.concatenate([pos[others], redo_pos]))
        spec[nan_rows] = sfft.rfft(work[nan_rows], axis=1, workers=workers)
    # the straight line through the first and last EDGE_CHANNELS channels, removed in the
    # delay domain: X_line(k) = slope * sum_n n exp(-2 pi i k n / N) = -slope N / (1 - z_k)
    m = EDGE_CHANNELS
    left = work[:, :m].mean(axis=1, dtype=np.float64)
    right = work[:, n - m:].mean(axis=1, dtype=np.float64)
    slope = np.where(empty, 0.0, (right - left) / (n - m))

    def line(k: np.ndarray) -> np.ndarray:
        z = np.exp(-2j * np.pi * k / n)
        return (slope[:, None] * (-n / (1 - z))[None, :]).astype(plan.ctype)

    if plan.threshold == "significance":
        amp_ref = np.abs(spec[:, plan.ref] - line(plan.ref))
        limit = plan.nsigma * np.median(amp_ref, axis=1) / np.sqrt(np.log(4.0))
    else:
        ok = ~empty
        k_all = np.arange(1, nbins)
        mean_amp = (np.abs(spec[ok, 1:] - line(k_all)[ok]).mean(axis=0) if ok.any()
                    else np.zeros(nbins - 1))
        limit = np.full(len(chunk), plan.factor * np.median(mean_amp))
    half = plan.half
    kept = np.zeros(len(chunk), np.int32)
    taken = np.zeros((len(chunk), nbins), bool) if len(plan.spans) > 1 else None
    for a, b in plan.spans:
        lo, hi = max(1, a - half), min(nbins, b + half)
        inside = np.arange(lo, hi)
        local = spec[:, lo:hi] - line(inside)
        amp = np.abs(local)
        in_window = (inside >= a) & (inside < b)
        peak = lo + np.argmax(np.where(in_window, amp, -1.0), axis=1)
        near = np.abs(inside[None, :] - peak[:, None]) <= half
        if plan.threshold == "significance":
            peak_amp = amp[np.arange(len(chunk)), peak - lo]
            keep = near & (peak_amp > limit)[:, None]
        else:
            keep = near & (amp > limit[:, None])
        keep &= ~empty[:, None]
        if taken is not None:  # a bin counts once where windows overlap
            keep &= ~taken[:, lo:hi]
            taken[:, lo:hi] |= keep
        spec[:, lo:hi] -= np.where(keep, local, 0)
        kept += keep.sum(axis=1)
    # irfft gives work - ripple; the output is x - ripple: put the original values back
    rows, pos = changed
    rows = slice(None) if rows is None else rows
    restore = chunk[rows, pos] - work[rows, pos] if pos.size else None
    irfft_into(spec, dest, workers)
    if restore is not None:
        dest[rows, pos] += restore
    if empty.any():
        dest[empty] = chunk[empty]
    return kept


def _threads(workers: int | None) -> int:
    """Thread count as scipy.fft reads ``workers``: None = every core, -1 = every core,
    -2 = all but one, ..."""
    cores = os.cpu_count() or 1
    if workers is None or workers == 0:
        return cores
    return workers if workers > 0 else max(1, cores + 1 + workers)


def remove_standing_waves(
    x: np.ndarray,
    protect: np.ndarray | None,
    *,
    step_mhz: float,
    windows_us: Sequence[tuple[float, float]] = DEFAULT_WINDOWS_US,
    threshold: str = "significance",
    nsigma: float = 5.0,
    factor: float = 1.4,
    reference_us: tuple[float, float] = (5.0, 50.0),
    keep_bins: int = 10,
    hifast_bins: int = 5,
    period_mhz: float | None = None,
    workers: int | None = None,
    batch: int = 32,
    protect_channels: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Remove standing waves from spectra ``x`` (..., N); returns (cleaned, bins removed).

    ``protect`` (same shape, bool) marks channels substituted before the transform (sources,
    flags), ``protect_channels`` (N,) those substituted in every spectrum; NaN channels are always substituted and stay NaN in the output. A spectrum with
    every channel protected or NaN is returned unchanged with 0 bins removed.
    See the module docstring for the method.

    Spectra go through in batches of ``batch`` rows on ``workers`` threads (default: every
    core), each batch whole on one thread, so that the substitution and the thresholds run in
    parallel as well as the transforms; a single batch uses ``workers`` FFT threads instead.
    """
    if step_mhz < 0:  # a decreasing axis is processed as its increasing mirror image
        out, counts = remove_standing_waves(
            x[..., ::-1], None if protect is None else protect[..., ::-1], step_mhz=-step_mhz,
            windows_us=windows_us, threshold=threshold, nsigma=nsigma, factor=factor,
            reference_us=reference_us, keep_bins=keep_bins, hifast_bins=hifast_bins,
            period_mhz=period_mhz, workers=workers, batch=batch,
            protect_channels=None if protect_channels is None else protect_channels[::-1])
        return out[..., ::-1], counts
    shape = x.shape
    n = shape[-1]
    dtype = x.dtype if x.dtype in (np.float32, np.float64) else np.float64
    rows = np.ascontiguousarray(x.reshape(-1, n), dtype=dtype)
    prot = None if protect is None else np.broadcast_to(protect, shape).reshape(-1, n)
    channels = None
    if protect_channels is not None and protect_channels.any():
        channels = np.asarray(protect_channels, bool)
    plan = _plan(n, step_mhz, windows_us, threshold, nsigma, factor, reference_us, keep_bins,
                 hifast_bins, period_mhz, dtype)
    workers = _threads(workers)
    out = np.empty_like(rows)
    counts = np.zeros(rows.shape[0], np.int16)
    starts = range(0, rows.shape[0], batch)
    if not starts:  # no spectra
        return out.reshape(shape), counts.reshape(shape[:-1])

    def one(start: int, fft_workers: int) -> None:
        sl = slice(start, start + batch)
        counts[sl] = _clean_batch(rows[sl], None if prot is None else prot[sl], channels,
                                  out[sl], plan, fft_workers)

    if workers == 1 or len(starts) == 1:
        for start in starts:
            one(start, workers)
    else:
        with ThreadPoolExecutor(min(workers, len(starts))) as pool:
            list(pool.map(lambda s: one(s, 1), starts))
    return out.reshape(shape), counts.reshape(shape[:-1])


def per_spectrum(kernel: Any, data: xr.DataArray, protect: xr.DataArray | None
                 ) -> tuple[xr.DataArray, xr.DataArray]:
    """Apply ``kernel(x, p) -> (cleaned, per-spectrum ints)`` to ``data`` (and ``protect``,
    same dims) with ``frequency`` last; lazily, one task per dask chunk, when ``data`` is
    dask-backed.

    Dask chunks go through ``map_blocks`` rather than ``xr.apply_ufunc``: apply_ufunc's
    gufunc path concatenates the (single) frequency chunk of every input, which copies
    each block once more (about 15% of the filter's time).
    """
    dims = [*batch_dims(data), "frequency"]
    data = data.transpose(*dims)
    if protect is not None:
        protect = protect.transpose(*dims)
    out_dtype = data.dtype if data.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    if data.chunks is None:
        cleaned, counts = kernel(np.asarray(data.values),
                                 None if protect is None else np.asarray(protect.values))
    else:
        import dask.array as dsa

        args = [data.data] + ([] if protect is None else [protect.data])
        both = dsa.map_blocks(lambda x, p=None: kernel(x, p), *args, dtype=object,
                              meta=np.empty((0,) * data.ndim, object))
        cleaned = both.map_blocks(lambda pair: pair[0], dtype=out_dtype,
                                  meta=np.empty((0,) * data.ndim, out_dtype))
        # a block of counts as (..., 1), then the axis dropped: map_blocks' drop_axis would
        # try to concatenate the (tuple) blocks along it
        counts = both.map_blocks(lambda pair: pair[1][..., None], chunks=(*both.chunks[:-1], (1,)),
                                 dtype=np.int16, meta=np.empty((0,) * data.ndim, np.int16))[..., 0]
    spectra_coords = {k: v for k, v in data.coords.items() if "frequency" not in v.dims}
    return (xr.DataArray(cleaned, dims=dims, coords=data.coords, attrs=data.attrs),
            xr.DataArray(counts, dims=dims[:-1], coords=spectra_coords))


class FFTStandingWave:
    """``fft-standing-wave``: the FFT filter of arXiv 2411.13016 on a spectra Dataset.

    Returns the Dataset with the spectra variable cleaned (same name, dims, coords, attrs),
    plus ``sw_bins`` (one value per spectrum: how many delay bins were removed), lazily on
    dask input (one task per chunk, whole band per chunk: :func:`per_spectrum`). Compute the
    two together (``ds.compute()``, or ``overtone process``, which writes them in one pass):
    computing them one at a time runs the filter twice.
    """

    name = "fft-standing-wave"

    def __init__(self, variable: str | None = None,
                 windows_us: Sequence[Sequence[float]] = DEFAULT_WINDOWS_US,
                 threshold: str = "significance", nsigma: float = 5.0, factor: float = 1.4,
                 reference_us: Sequence[float] = (5.0, 50.0), keep_bins: int = 10,
                 hifast_bins: int = 5, protect: bool = True,
                 protect_ranges_mhz: Sequence[Sequence[float]] = MILKY_WAY_MHZ,
                 period_mhz: float | None = None, workers: int | None = None,
                 batch: int = 32, detect: float | None = None) -> None:
        if threshold not in ("significance", "hifast"):
            raise ConfigError(f"threshold = {threshold!r}; allowed: 'significance', 'hifast'")
        if nsigma <= 0 or factor <= 0:
            raise ConfigError("nsigma and factor must be positive")
        if len(reference_us) != 2 or not 0 <= reference_us[0] < reference_us[1]:
            raise ConfigError(f"reference_us = {list(reference_us)}; give [low, high] in us")
        if batch < 1:
            raise ConfigError(f"batch = {batch}; it must be at least 1")
        if detect is not None and detect <= 0:
            raise ConfigError(f"detect = {detect}; give a positive threshold in sigma (HiFAST: 3) "
                              "or leave it out")
        if detect is not None and not protect:
            raise ConfigError("detect protects what it finds, so it needs protect = true")
        self.detect = None if detect is None else float(detect)
        self.variable = variable
        self.windows_us = _check_windows(windows_us)
        self.threshold = threshold
        self.nsigma = float(nsigma)
        self.factor = float(factor)
        self.reference_us = (float(reference_us[0]), float(reference_us[1]))
        if keep_bins < 0 or hifast_bins < 0:
            raise ConfigError("keep_bins and hifast_bins must be non-negative")
        self.keep_bins = int(keep_bins)
        self.hifast_bins = int(hifast_bins)
        self.protect = protect
        self.protect_ranges_mhz = [list(map(float, r)) for r in protect_ranges_mhz]
        self.period_mhz = period_mhz
        self.workers = workers
        self.batch = batch

    def _workers(self, data: xr.DataArray) -> int | None:
        """Threads per call: as given; by default every core, or 1 per dask chunk when there
        are at least as many chunks as cores (dask already runs one chunk per core then)."""
        if self.workers is None and data.chunks is not None:
            blocks = int(np.prod([len(c) for c in data.chunks]))
            if blocks >= (os.cpu_count() or 1):
                return 1
        return self.workers

    def params(self) -> dict[str, Any]:
        return {"variable": self.variable, "windows_us": [list(w) for w in self.windows_us],
                "threshold": self.threshold, "nsigma": self.nsigma, "factor": self.factor,
                "reference_us": list(self.reference_us), "keep_bins": self.keep_bins,
                "hifast_bins": self.hifast_bins, "protect": self.protect, "protect_ranges_mhz": self.protect_ranges_mhz,
                "period_mhz": self.period_mhz, "detect": self.detect}

    def __call__(self, ds: xr.Dataset) -> xr.Dataset:
        name = pick_variable(ds, self.variable)
        axis = frequency_axis(ds)
        data = frequency_chunked_once(ds[name])
        # check the delay windows against this band now, not later inside a dask task
        remove_standing_waves(np.zeros((1, axis.n), np.float32), None, step_mhz=axis.step_mhz,
                              windows_us=self.windows_us, threshold=self.threshold,
                              reference_us=self.reference_us)
        protect, channels = (protection_masks(ds, data, axis, self.protect_ranges_mhz)
                             if self.protect else (None, None))
        if self.detect is not None:  # strong signals nobody masked (overtone_radio.detect)
            known = protect
            if channels is not None:
                shared = xr.DataArray(channels, dims="frequency")
                known = shared if known is None else known | shared
            found = detect_mask(data, known, self.detect)
            protect = found if protect is None else protect | found
        kwargs = dict(step_mhz=axis.step_mhz, windows_us=self.windows_us, threshold=self.threshold,
                      nsigma=self.nsigma, factor=self.factor, reference_us=self.reference_us,
                      keep_bins=self.keep_bins, hifast_bins=self.hifast_bins,
                      period_mhz=self.period_mhz, workers=self._workers(data), batch=self.batch,
                      protect_channels=channels)
        cleaned, nbins = per_spectrum(lambda x, p: remove_standing_waves(x, p, **kwargs), data, protect)
        out = ds.copy()
        out[name] = cleaned.transpose(*ds[name].dims).assign_attrs(ds[name].attrs)
        out["sw_bins"] = nbins.assign_attrs(
            long_name="delay bins removed by the FFT standing-wave filter", units="1")
        record(out, self.name, __version__, self.params())
        return out

    def plot(self, before: xr.Dataset, after: xr.Dataset):
        """Spectrum and delay spectrum (|rfft|, mean over the first 16 spectra), before/after."""
        from overtone_radio.plotting import before_after

        return before_after(before, after, self.variable, title=self.name)
