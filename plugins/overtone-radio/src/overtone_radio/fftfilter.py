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
With ``adaptive_width`` (:class:`FFTStandingWave`'s default) the kept width grows, per
dataset and window (from 32 spectra spread over it, so that the output does not depend on
batching or chunking), by the contiguous run of bins around the peak whose batch-average power
stands ``width_nsigma`` (3) sigma above the noise and above ``width_fraction`` (1%) of the
peak's: a period drifting across the band (1.07 -> 1.11 MHz: 0.034 us, 17 bins over
500 MHz) spreads its power over more bins than +-10 (see :func:`_extents`).
``"hifast"`` reproduces HiFAST's rule: bins within +-``hifast_bins`` of the peak whose
|X| > factor * median over all tau of the mean |X| over the spectra of the chunk (factor 1.4
per spectrum in HiFAST); on pure noise that threshold is about 1.4 sigma and some bins always
pass.
"""

from __future__ import annotations

import functools
import json
import os
import threading
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.fft as sfft
import xarray as xr
from overtone import ConfigError

from overtone_radio import __version__, ripples
from overtone_radio.detect import detect_mask
from overtone_radio.protect import substitute
from overtone_radio.spectra import (
    FLAG,
    MILKY_WAY_MHZ,
    FrequencyAxis,
    batch_dims,
    check_pair,
    check_pairs,
    frequency_axis,
    frequency_chunked_once,
    pick_variable,
    protection_masks,
    record,
)

DEFAULT_WINDOWS_US = ((0.88, 0.97), (1.78, 1.92))
EDGE_CHANNELS = 16
EXTENT_SPECTRA = 32  # spectra measuring a dataset's adaptive kept width
LOBE_BINS = 4  # bins either side of a fixed period's peak within 1% of its power: no widening


def window_bins(axis: FrequencyAxis, windows: Sequence[tuple[float, float]]) -> np.ndarray:
    """Indices of the rfft bins whose delay lies inside any of ``windows`` (us)."""
    tau = axis.delays_us()
    inside = np.zeros(tau.size, bool)
    for lo, hi in windows:
        inside |= (tau >= lo) & (tau <= hi)
    inside[0] = False
    return np.flatnonzero(inside)


#: numpy >= 2 transforms float32 in single precision and writes ``irfft`` into ``out``.
_IRFFT_OUT = int(np.__version__.split(".")[0]) >= 2


def irfft_into(spec: np.ndarray, dest: np.ndarray, workers: int) -> None:
    """``dest[:] = irfft(spec, n=dest.shape[1], axis=1)``, written straight into ``dest`` by
    numpy's public ``numpy.fft.irfft(..., out=dest)`` (numpy >= 2: no temporary, no copy of
    the batch; single-threaded, which is how batches run), else through ``scipy.fft.irfft``
    on ``workers`` threads."""
    if _IRFFT_OUT and spec.dtype == np.result_type(dest.dtype, np.complex64) \
            and dest.flags.c_contiguous:
        np.fft.irfft(spec, n=dest.shape[1], axis=1, out=dest)
    else:
        dest[:] = sfft.irfft(spec, n=dest.shape[1], axis=1, workers=workers)


def _line_dft(k: np.ndarray, n: int) -> np.ndarray:
    """-N / (1 - z_k), z_k = exp(-2 pi i k / N): the DFT at bins ``k`` (not 0) of the ramp
    x(c) = c, c = 0 .. N - 1 (a line of unit slope); complex128."""
    z = np.exp(-2j * np.pi * k / n)
    return -n / (1 - z)


def row_median(a: np.ndarray) -> np.ndarray:
    """``np.median(a, axis=-1)`` for a 2-D float array, value for value (the two middle order
    statistics and their mean in the array's dtype; NaN where a row holds one), without
    ``np.median``'s general-axis bookkeeping, which costs more than the selection itself on
    the small arrays of one batch. One selection (``np.partition`` at the upper middle
    element) gives the upper middle value; for an even width the lower one is the largest
    of the elements placed before it; NaN rows are found by ``np.isnan``."""
    m = a.shape[-1]
    half = m // 2
    part = np.partition(a, half, axis=-1)
    mid = part[:, half]
    if m % 2 == 0:
        mid = (part[:, :half].max(axis=1) + mid) / 2
    nan = np.isnan(a).any(axis=1)
    if nan.any():
        mid = np.where(nan, np.nan, mid).astype(a.dtype)
    return mid


@dataclass(frozen=True)
class _Span:
    """One delay window of a plan: bins ``[lo, hi)`` looked at (the window ``[a, b)`` widened
    by ``half`` each side) and the ramp DFT at those bins (:func:`_line_dft`)."""

    lo: int
    hi: int
    a: int
    b: int
    inside: np.ndarray
    line: np.ndarray


@dataclass(frozen=True)
class _Plan:
    """What every batch of one band shares: bin ranges, thresholds and the ripple period."""

    n: int
    spans: list[tuple[int, int]]
    half: int
    ref: np.ndarray
    ref_cols: slice | np.ndarray  # ``ref`` as a slice
    threshold: str
    nsigma: float
    factor: float
    period_ch: float
    ctype: type
    edge: int
    robust_edges: bool
    refuse_ratio: float | None
    probe: np.ndarray  # channels where the model is checked (middle 80% of the band)
    basis: dict  # window start bin -> (cos, sin) of 2 pi k c / N, k in the span, c in probe
    looks: list[_Span]  # per window: the bins looked at and the ramp's DFT there
    ref_line: np.ndarray  # the ramp's DFT at the reference bins
    overlap: tuple[int, int] | None  # bins spanned by the windows when two of them overlap
    width_nsigma: float | None  # adaptive kept width: see :func:`_extents`; None: fixed
    width_fraction: float
    extents: tuple[tuple[int, int], ...] | None  # per window, fixed for a dataset


def _plan(n: int, step_mhz: float, windows_us: Sequence[tuple[float, float]], threshold: str,
          nsigma: float, factor: float, reference_us: tuple[float, float], keep_bins: int,
          hifast_bins: int, period_mhz: float | None, dtype: np.dtype, edge_channels: int = 16,
          robust_edges: bool = False, refuse_ratio: float | None = None,
          width_nsigma: float | None = None, width_fraction: float = 0.01,
          extents: Sequence[tuple[int, int]] | None = None) -> _Plan:
    """The :class:`_Plan` of a band, made once per set of arguments (every dask chunk, every
    call on a band of the same layout shares it; its arrays are read-only)."""
    return _cached_plan(n, float(step_mhz), tuple((float(a), float(b)) for a, b in windows_us),
                        threshold, float(nsigma), float(factor),
                        tuple(float(v) for v in reference_us), int(keep_bins), int(hifast_bins),
                        None if period_mhz is None else float(period_mhz), np.dtype(dtype),
                        int(edge_channels), bool(robust_edges),
                        None if refuse_ratio is None else float(refuse_ratio),
                        None if width_nsigma is None else float(width_nsigma),
                        float(width_fraction),
                        None if extents is None else tuple((int(a), int(b)) for a, b in extents))


@functools.lru_cache(maxsize=32)
def _cached_plan(n: int, step_mhz: float, windows_us: tuple[tuple[float, float], ...],
                 threshold: str, nsigma: float, factor: float, reference_us: tuple[float, float],
                 keep_bins: int, hifast_bins: int, period_mhz: float | None, dtype: np.dtype,
                 edge_channels: int, robust_edges: bool, refuse_ratio: float | None,
                 width_nsigma: float | None, width_fraction: float,
                 extents: tuple[tuple[int, int], ...] | None) -> _Plan:
    plan = _make_plan(n, step_mhz, windows_us, threshold, nsigma, factor, reference_us,
                      keep_bins, hifast_bins, period_mhz, dtype, edge_channels, robust_edges,
                      refuse_ratio, width_nsigma, width_fraction, extents)
    arrays = [plan.ref, plan.ref_line, plan.probe, *(a for pair in plan.basis.values() for a in pair),
              *(a for w in plan.looks for a in (w.inside, w.line))]
    if isinstance(plan.ref_cols, np.ndarray):
        arrays.append(plan.ref_cols)
    for a in arrays:
        a.flags.writeable = False
    return plan


def _make_plan(n: int, step_mhz: float, windows_us: Sequence[tuple[float, float]],
               threshold: str, nsigma: float, factor: float, reference_us: tuple[float, float],
               keep_bins: int, hifast_bins: int, period_mhz: float | None, dtype: np.dtype,
               edge_channels: int, robust_edges: bool, refuse_ratio: float | None,
               width_nsigma: float | None = None, width_fraction: float = 0.01,
               extents: tuple[tuple[int, int], ...] | None = None) -> _Plan:
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
    if extents is not None and len(extents) != len(spans):
        raise ConfigError(f"extents has {len(extents)} entries for {len(spans)} delay windows")
    if threshold == "significance" and ref.size < 32:
        raise ConfigError(f"reference_us = {list(reference_us)} holds only {ref.size} delay bins "
                          f"(delays run to {(nbins - 1) * bin_us:.3g} us); widen it")
    if ref.size > 1024:
        ref = ref[:: ref.size // 1024]
    # the same bins as a slice (a strided view of a batch's spectra, no gather)
    ref_cols = slice(int(ref[0]), int(ref[-1]) + 1, int(ref[1] - ref[0]) if ref.size > 1 else 1) \
        if ref.size else ref
    if period_mhz is None:
        lo, hi = windows_us[0]
        period_mhz = 2.0 / (lo + hi)
    probe = np.unique(np.linspace(0.1 * n, 0.9 * n, 64).astype(np.int64))  # model checks
    half = keep_bins if threshold == "significance" else hifast_bins
    basis = {}
    if refuse_ratio is not None:
        for a, b in spans:
            lo, hi = max(1, a - half), min(nbins, b + half)
            angle = 2 * np.pi * np.outer(np.arange(lo, hi), probe) / n
            basis[lo] = (np.cos(angle).astype(dtype), np.sin(angle).astype(dtype))
    looks = []
    for a, b in spans:
        lo, hi = max(1, a - half), min(nbins, b + half)
        inside = np.arange(lo, hi)
        looks.append(_Span(lo, hi, a, b, inside, _line_dft(inside, n)))
    ranges = sorted((w.lo, w.hi) for w in looks)
    overlap = None
    if any(ranges[i + 1][0] < ranges[i][1] for i in range(len(ranges) - 1)):
        overlap = (ranges[0][0], max(hi for _, hi in ranges))
    return _Plan(n=n, spans=spans, half=half,
                 ref=ref, ref_cols=ref_cols, threshold=threshold, nsigma=nsigma, factor=factor,
                 period_ch=period_mhz / step_mhz,
                 ctype=np.complex64 if dtype == np.float32 else np.complex128,
                 edge=max(1, min(edge_channels, n // 4)), robust_edges=robust_edges,
                 refuse_ratio=refuse_ratio, probe=probe, basis=basis, looks=looks,
                 ref_line=_line_dft(ref, n), overlap=overlap,
                 width_nsigma=width_nsigma if threshold == "significance" else None,
                 width_fraction=width_fraction,
                 extents=extents if threshold == "significance" else None)


def _clean_batch(chunk: np.ndarray, p: np.ndarray | None, channels: np.ndarray | None,
                 dest: np.ndarray, plan: _Plan, workers: int, filled: bool = False,
                 measure: list | None = None) -> np.ndarray:
    """Filter the spectra ``chunk`` (rows, n) into ``dest``; returns the bins removed per row.
    ``p``: protected channels per row; ``channels``: protected in every row; ``filled``:
    ``dest`` already holds a copy of ``chunk`` (substitution then works in it in place).
    ``measure`` (significance mode): append ``(empty, scale, amps)`` to it and stop before
    filtering: the rows left alone, each row's noise scale s and, per window of
    ``plan.looks``, |X - line| over its looked-at bins (what :func:`measure_extents` needs,
    row by row, so that rows measured in several parts give the same numbers)."""
    n, nbins = plan.n, plan.n // 2 + 1
    empty = np.zeros(len(chunk), bool)
    changed: tuple[np.ndarray | None, np.ndarray] = (None, np.zeros(0, np.int64))
    work = chunk
    if p is None and channels is not None:
        p, channels = np.broadcast_to(channels, chunk.shape), None
    if p is not None and (channels is not None or (p[:1] if p.strides[0] == 0 else p).any()):
        work, empty, changed = substitute(dest if filled else chunk, p, plan.period_ch, out=dest,
                                          channels=channels)
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
    m = plan.edge
    if plan.robust_edges:  # medians: a spike among the edge channels does not tilt the line
        ends = row_median(np.concatenate([work[:, :m], work[:, n - m:]], axis=0))
        left, right = (ends[: len(work)].astype(np.float64), ends[len(work):].astype(np.float64))
    else:
        left = work[:, :m].mean(axis=1, dtype=np.float64)
        right = work[:, n - m:].mean(axis=1, dtype=np.float64)
    slope = np.where(empty, 0.0, (right - left) / (n - m))

    def line(dft: np.ndarray) -> np.ndarray:
        return (slope[:, None] * dft[None, :]).astype(plan.ctype)

    if plan.threshold == "significance":
        amp_ref = np.abs(spec[:, plan.ref_cols] - line(plan.ref_line))
        scale = row_median(amp_ref) / np.sqrt(np.log(4.0))
        limit = plan.nsigma * scale
        # mean noise power per delay bin, 2 s^2 for Rayleigh |X| of scale s, batch-averaged
        if measure is not None:
            measure.append((empty, scale, [np.abs(spec[:, w.lo:w.hi] - line(w.line))
                                           for w in plan.looks]))
            return np.zeros(len(chunk), np.int32)
        noise_power = _noise_power(scale, empty)
    else:
        ok = ~empty
        k_all = np.arange(1, nbins)
        mean_amp = (np.abs(spec[ok, 1:] - line(_line_dft(k_all, n))[ok]).mean(axis=0)
                    if ok.any() else np.zeros(nbins - 1))
        limit = np.full(len(chunk), plan.factor * np.median(mean_amp))
    half = plan.half
    kept = np.zeros(len(chunk), np.int32)
    taken = None
    if plan.overlap is not None:  # a bin counts once where windows overlap
        first = plan.overlap[0]
        taken = np.zeros((len(chunk), plan.overlap[1] - first), bool)
    rows_at = np.arange(len(chunk))
    parts = []
    for w in plan.looks:
        lo, hi = w.lo, w.hi
        local = spec[:, lo:hi] - line(w.line)
        amp = np.abs(local)
        # the peak inside the window proper (first of equal maxima, as argmax gives)
        peak = w.a + np.argmax(amp[:, w.a - lo: w.b - lo], axis=1)
        left = right = half
        if plan.extents is not None:  # measured once for the dataset (measure_extents)
            more = plan.extents[len(parts)]
            left, right = half + more[0], half + more[1]
        elif plan.width_nsigma is not None:
            more = _extents(amp, ~empty, w, lo, noise_power, plan.width_nsigma,
                            plan.width_fraction)
            left, right = half + more[0], half + more[1]
        offset = w.inside[None, :] - peak[:, None]
        near = (offset >= -left) & (offset <= right)
        if plan.threshold == "significance":
            keep = near & ((amp[rows_at, peak - lo] > limit) & ~empty)[:, None]
        else:
            keep = near & (amp > limit[:, None]) & ~empty[:, None]
        if taken is not None:
            mine = taken[:, lo - first: hi - first]
            keep &= ~mine
            mine |= keep
        parts.append((lo, hi, keep, local, peak, (left, right)))
        kept += keep.sum(axis=1)
    if plan.refuse_ratio is not None and kept.any():
        refused = _implausible(parts, plan, work)
        kept[refused] = -1
    else:
        refused = None
    for lo, hi, keep, local, *_ in parts:
        if refused is not None:
            keep &= ~refused[:, None]
        spec[:, lo:hi] -= np.where(keep, local, 0)
    # irfft gives work - ripple; the output is x - ripple: put the original values back
    rows, pos = changed
    restore = flat = None
    if pos.size and rows is not None and all(a.flags.c_contiguous for a in (chunk, work, dest)):
        flat = rows * n + pos  # flat indices into the batch: one gather each
        restore = chunk.reshape(-1)[flat] - work.reshape(-1)[flat]
    elif pos.size:
        rows = slice(None) if rows is None else rows
        restore = chunk[rows, pos] - work[rows, pos]
    irfft_into(spec, dest, workers)
    if flat is not None:
        dest.reshape(-1)[flat] += restore
    elif restore is not None:
        dest[rows, pos] += restore
    if empty.any():
        dest[empty] = chunk[empty]
    if refused is not None and refused.any():  # left as they were, bit for bit
        dest[refused] = chunk[refused]
    return kept


def _noise_power(scale: np.ndarray, empty: np.ndarray) -> float:
    """Mean noise power per delay bin of a set of rows, 2 s^2 for Rayleigh |X| of scale s,
    averaged over the rows that are not ``empty`` and have a finite s (inf when none has)."""
    good = ~empty & np.isfinite(scale)
    return float(np.mean(2 * scale[good] ** 2)) if good.any() else np.inf


def _extents(amp: np.ndarray, rows: np.ndarray, w: _Span, lo: int, noise_power: float,
             width_nsigma: float, fraction: float) -> tuple[int, int]:
    """Bins to add left and right of each row's peak for a ripple whose power spreads over
    more delay bins than a fixed-period one (a period drifting across the band). From the
    batch-average power P(k) = mean over ``rows`` of |X_k|^2 in the looked-at bins: the
    contiguous run around P's peak (inside the window proper) where P > P0 (1 + nsigma /
    sqrt(R)), P0 the batch's mean noise power per bin and R the rows averaged (the mean of R
    exponential powers has standard deviation P0 / sqrt(R)) and P > ``fraction`` P(peak);
    its extent either side of the peak, less ``LOBE_BINS``, is returned, (0, 0) when the
    peak is not above that level. The fraction (default 0.01, -20 dB) keeps a fixed period's own 1 / k leakage
    (power |X_k|^2 / |X_peak|^2 ~ 1 / (pi k)^2, below 1% beyond 3 bins, already inside the
    margin) from widening the run, and ``LOBE_BINS`` its main lobe (a period between two
    bins puts as much power in the next bin as in the peak), while a period drifting across the band spreads its
    power nearly evenly over 1 / P_low - 1 / P_high of delay. The run is capped by the bins
    looked at (the window widened by the margin)."""
    count = int(rows.sum())
    if count == 0 or not np.isfinite(noise_power):
        return 0, 0
    power = np.einsum("rk,rk->k", amp[rows], amp[rows], dtype=np.float64) / count
    level = noise_power * (1.0 + width_nsigma / np.sqrt(count))
    top = w.a - lo + int(np.argmax(power[w.a - lo: w.b - lo]))
    if not power[top] > level:
        return 0, 0
    level = max(level, fraction * power[top])
    below = np.flatnonzero(power <= level)
    left_end = below[below < top]
    right_end = below[below > top]
    first = int(left_end[-1]) + 1 if left_end.size else 0
    last = int(right_end[0]) - 1 if right_end.size else power.size - 1
    return max(0, top - first - LOBE_BINS), max(0, last - top - LOBE_BINS)


def _implausible(parts: list, plan: _Plan, work: np.ndarray) -> np.ndarray:
    """Rows whose ripple model is implausible: somewhere inside the band (64 channels over
    its middle 80%) it exceeds ``refuse_ratio`` times the channel noise sigma there (median
    |x(c + 1) - x(c)| / 0.954 over those channels: white noise has median |difference|
    0.954 sigma; junk elsewhere in the band does not inflate it), and subtracting it makes the
    spectrum there scatter more about its mean, not less. A standing wave that large is
    visible in the data and its removal flattens them; a model that large which roughens
    them is the leakage of something else (junk edge channels, a step) into the windows.
    The model is evaluated at those channels only: m(c) = (2 / N) Re sum_k X_k e^(2 pi i k c / N)."""
    n = plan.n
    x = work[:, plan.probe].astype(np.float64)
    noise = row_median(np.abs(work[:, plan.probe + 1] - x)) / 0.954
    # |m(c)| <= (2 / N) sum_k |X_k|: rows below the limit even so need no model
    bound = sum(np.abs(np.where(keep, local, 0)).sum(axis=1) for _, _, keep, local, *_ in parts)
    rows = np.flatnonzero(bound * (2.0 / n) > plan.refuse_ratio * noise)
    refused = np.zeros(len(work), bool)
    if rows.size == 0:
        return refused
    model = np.zeros((rows.size, plan.probe.size))
    for lo, hi, keep, local, peak, (left, right) in parts:
        cos, sin = plan.basis[lo]
        # the kept bins of a row lie within [peak - left, peak + right]: gather those alone
        idx = peak[rows, None] - lo + np.arange(-left, right + 1)[None, :]
        valid = (idx >= 0) & (idx < hi - lo)
        idx = np.clip(idx, 0, hi - lo - 1)
        coef = np.take_along_axis(np.where(keep[rows], local[rows], 0), idx, axis=1)
        coef = np.where(valid, coef, 0)
        # einsum's own loops: BLAS threads only add start-up cost at this size
        model += (np.einsum("rk,rkp->rp", coef.real, cos[idx])
                  - np.einsum("rk,rkp->rp", coef.imag, sin[idx]))
    model *= 2.0 / n
    x = x[rows]
    before = x.std(axis=1)
    after = (x - model).std(axis=1)
    refused[rows] = (np.abs(model).max(axis=1) > plan.refuse_ratio * noise[rows]) & (after > before)
    return refused


def _threads(workers: int | None) -> int:
    """Thread count as scipy.fft reads ``workers``: None = every core, -1 = every core,
    -2 = all but one, ..."""
    cores = os.cpu_count() or 1
    if workers is None or workers == 0:
        return cores
    return workers if workers > 0 else max(1, cores + 1 + workers)


class Prefill:
    """The output buffer of :func:`remove_standing_waves` for the spectra ``rows`` (2-D,
    C-contiguous), filled with a copy of them batch by batch on a background thread while
    the caller does something else (:class:`FFTStandingWave` makes its plan meanwhile): the
    buffer's first touch (page faults) and the copy that substitution starts from then run on
    a core that would otherwise wait. Once the filter starts (:meth:`stop`) the thread copies
    no further batch; a batch it has not reached is copied by the worker that needs it
    (:meth:`ready`). The output is the same either way."""

    def __init__(self, rows: np.ndarray, batch: int) -> None:
        self.rows = rows
        self.batch = batch
        self.out = np.empty_like(rows)
        count = -(-len(rows) // batch)
        self._claimed = [False] * count
        self._done = [threading.Event() for _ in range(count)]
        self._lock = threading.Lock()
        self._stopped = False
        self._failed: set[int] = set()
        self._thread = threading.Thread(target=self._run, name="fft-standing-wave-prefill",
                                        daemon=True)
        self._thread.start()

    def _claim(self, i: int) -> bool:
        with self._lock:
            if self._claimed[i]:
                return False
            self._claimed[i] = True
            return True

    def _copy(self, i: int) -> None:
        sl = slice(i * self.batch, (i + 1) * self.batch)
        np.copyto(self.out[sl], self.rows[sl])

    def _run(self) -> None:
        for i in range(len(self._done)):
            if self._stopped:
                return
            if self._claim(i):
                try:
                    self._copy(i)
                except BaseException:  # the worker that needs this batch copies it again
                    self._failed.add(i)
                    return
                finally:
                    self._done[i].set()

    def stop(self) -> None:
        """Let the thread finish the batch it is copying and start no other."""
        self._stopped = True

    def matches(self, rows: np.ndarray, batch: int) -> bool:
        """Whether ``rows`` (as :func:`remove_standing_waves` lays them out) are the spectra
        this buffer copies, in the same memory and layout, in batches of ``batch``."""
        return (batch == self.batch and rows.shape == self.rows.shape
                and rows.dtype == self.rows.dtype and rows.strides == self.rows.strides
                and rows.ctypes.data == self.rows.ctypes.data)

    def ready(self, start: int) -> None:
        """Make sure the batch starting at row ``start`` is copied into :attr:`out`."""
        i = start // self.batch
        if self._claim(i):
            self._copy(i)
        else:
            self._done[i].wait()
            if i in self._failed:
                self._copy(i)


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
    edge_channels: int = 16,
    robust_edges: bool = False,
    refuse_ratio: float | None = None,
    width_nsigma: float | None = None,
    width_fraction: float = 0.01,
    extents: Sequence[tuple[int, int]] | None = None,
    prefill: Prefill | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Remove standing waves from spectra ``x`` (..., N); returns (cleaned, bins removed).

    ``protect`` (same shape, bool) marks channels substituted before the transform (sources,
    flags), ``protect_channels`` (N,) those substituted in every spectrum; NaN channels are always substituted and stay NaN in the output. A spectrum with
    every channel protected or NaN is returned unchanged with 0 bins removed.
    See the module docstring for the method.

    Spectra go through in batches of ``batch`` rows on ``workers`` threads (default: every
    core), each batch whole on one thread, so that the substitution and the thresholds run in
    parallel as well as the transforms; a single batch uses ``workers`` FFT threads instead.
    ``prefill``: a :class:`Prefill` of these spectra, whose buffer becomes the output (it is
    ignored unless it holds these very spectra in batches of ``batch``).
    ``width_nsigma`` (significance mode): widen the kept bins of each window by the run of
    delay bins whose batch-average power stands ``width_nsigma`` sigma above the noise and
    above ``width_fraction`` of the peak's (:func:`_extents`; a drifting period spreads its
    ripple over more bins), measured per batch; None keeps +-``keep_bins`` alone.
    ``extents``: per window, the bins (left, right) added to +-``keep_bins`` instead, the
    same for every batch (:func:`measure_extents` gives them once for a dataset).
    """
    if prefill is not None:
        prefill.stop()
    if step_mhz < 0:  # a decreasing axis is processed as its increasing mirror image
        out, counts = remove_standing_waves(
            x[..., ::-1], None if protect is None else protect[..., ::-1], step_mhz=-step_mhz,
            windows_us=windows_us, threshold=threshold, nsigma=nsigma, factor=factor,
            reference_us=reference_us, keep_bins=keep_bins, hifast_bins=hifast_bins,
            period_mhz=period_mhz, workers=workers, batch=batch,
            protect_channels=None if protect_channels is None else protect_channels[::-1],
            edge_channels=edge_channels, robust_edges=robust_edges, refuse_ratio=refuse_ratio,
            width_nsigma=width_nsigma, width_fraction=width_fraction, extents=extents)
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
                 hifast_bins, period_mhz, dtype, edge_channels, robust_edges, refuse_ratio,
                 width_nsigma, width_fraction, extents)
    workers = _threads(workers)
    if prefill is not None and not prefill.matches(rows, batch):
        prefill = None
    out = np.empty_like(rows) if prefill is None else prefill.out
    counts = np.zeros(rows.shape[0], np.int16)
    starts = range(0, rows.shape[0], batch)
    if not starts:  # no spectra
        return out.reshape(shape), counts.reshape(shape[:-1])

    def one(start: int, fft_workers: int) -> None:
        sl = slice(start, start + batch)
        if prefill is not None:
            prefill.ready(start)
        counts[sl] = _clean_batch(rows[sl], None if prot is None else prot[sl], channels,
                                  out[sl], plan, fft_workers, filled=prefill is not None)

    if workers == 1 or len(starts) == 1:
        for start in starts:
            one(start, workers)
    else:
        with ThreadPoolExecutor(min(workers, len(starts))) as pool:
            list(pool.map(lambda s: one(s, 1), starts))
    refused = int((counts < 0).sum())
    if refused:
        warnings.warn(
            f"fft-standing-wave: left {refused} of {counts.size} spectra unfiltered: their ripple "
            f"model is over {refuse_ratio:g}x the channel noise yet makes the band rougher, not "
            "flatter (leakage of junk edge channels or a step into the delay windows, not a "
            "standing wave); flag those channels (edges=true does) or check windows_us",
            RuntimeWarning, stacklevel=2)
    return out.reshape(shape), counts.reshape(shape[:-1])


def measure_extents(x: np.ndarray, protect: np.ndarray | None, *, step_mhz: float,
                    windows_us: Sequence[tuple[float, float]], width_nsigma: float = 3.0,
                    width_fraction: float = 0.01, nsigma: float = 5.0,
                    reference_us: tuple[float, float] = (5.0, 50.0), keep_bins: int = 10,
                    period_mhz: float | None = None,
                    protect_channels: np.ndarray | None = None, edge_channels: int = 16,
                    robust_edges: bool = False, workers: int | None = None
                    ) -> list[tuple[int, int]]:
    """Per window of ``windows_us``: the delay bins (left, right) of :func:`_extents` from the
    spectra ``x`` (rows, N; protected channels substituted as the filter does), to pass as
    ``extents`` to :func:`remove_standing_waves` so that every batch of a dataset keeps the
    same width (the output then does not depend on how the spectra are batched or chunked).
    A decreasing axis (``step_mhz < 0``) is measured on its mirror image, as filtered."""
    if step_mhz < 0:
        x, step_mhz = x[..., ::-1], -step_mhz
        protect = None if protect is None else protect[..., ::-1]
        protect_channels = None if protect_channels is None else protect_channels[::-1]
    n = x.shape[-1]
    dtype = x.dtype if x.dtype in (np.float32, np.float64) else np.float64
    rows = np.ascontiguousarray(x.reshape(-1, n), dtype=dtype)
    prot = None if protect is None else np.ascontiguousarray(
        np.broadcast_to(protect, x.shape).reshape(-1, n))
    channels = None
    if protect_channels is not None and protect_channels.any():
        channels = np.asarray(protect_channels, bool)
    plan = _plan(n, step_mhz, windows_us, "significance", nsigma, 1.4, reference_us, keep_bins,
                 5, period_mhz, dtype, edge_channels, robust_edges, None, width_nsigma,
                 width_fraction)
    threads = max(1, min(_threads(workers), len(rows)))
    bounds = np.linspace(0, len(rows), threads + 1).round().astype(int)
    parts: list = []  # per part, in row order: (empty, scale, amps)

    def one(i: int) -> list:
        sl = slice(bounds[i], bounds[i + 1])
        found: list = []
        _clean_batch(rows[sl], None if prot is None else prot[sl], channels,
                     np.empty_like(rows[sl]), plan, 1, measure=found)
        return found

    if threads <= 1:
        parts = one(0)
    else:  # the rows split over threads, whole (substitution and thresholds too)
        with ThreadPoolExecutor(threads) as pool:
            for found in pool.map(one, range(threads)):
                parts += found
    empty = np.concatenate([e for e, _, _ in parts])
    scale = np.concatenate([s for _, s, _ in parts])
    noise_power = _noise_power(scale, empty)
    return [_extents(np.concatenate([a[k] for _, _, a in parts]), ~empty, w, w.lo,
                     noise_power, width_nsigma, width_fraction)
            for k, w in enumerate(plan.looks)]


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

    Before filtering, from the guide spectrum (the mean of the first spectra,
    :mod:`overtone_radio.ripples`): junk band-edge channels are flagged (``edges``), lines
    nobody masked are protected in every spectrum (``lines``), and the delay windows are
    chosen: ``windows_us`` when given, else the telescope's preset (``telescope``, or the
    dataset's ``telescope``/``TELESCOP`` attribute) together with every significant peak of
    the guide spectrum's delay spectrum (``search``). Widths are physical (``keep_us``,
    ``edge_fit_mhz``) and converted per dataset.

    Returns the Dataset with the spectra variable cleaned (same name, dims, coords, attrs,
    plus ``sw_windows_us``), ``sw_bins`` (per spectrum: delay bins removed, -1 where the
    model was refused as implausible), ``sw_protected`` (frequency: channels protected in
    every spectrum) and ``flag`` OR-ed with the junk edge channels; lazily on dask input (one
    task per chunk, whole band per chunk: :func:`per_spectrum`). Compute the outputs together
    (``ds.compute()``, or ``overtone process``): one at a time runs the filter twice.
    """

    name = "fft-standing-wave"

    def __init__(self, variable: str | None = None,
                 windows_us: Sequence[Sequence[float]] | None = None,
                 telescope: str = "auto", search: bool = True, search_p: float = 1e-3,
                 search_range_us: Sequence[float] = (0.2, 30.0),
                 threshold: str = "significance", nsigma: float = 5.0, factor: float = 1.4,
                 reference_us: Sequence[float] = (5.0, 50.0), keep_us: float = 0.02,
                 hifast_us: float = 0.01, edges: bool = True, edge_fit_mhz: float = 0.12,
                 refuse_ratio: float | None = 3.0, lines: bool = True, protect: bool = True,
                 protect_ranges_mhz: Sequence[Sequence[float]] = MILKY_WAY_MHZ,
                 period_mhz: float | None = None, workers: int | None = None,
                 batch: int = 32, detect: float | None = None, adaptive_width: bool = True,
                 width_nsigma: float = 3.0, width_fraction: float = 0.01) -> None:
        if threshold not in ("significance", "hifast"):
            raise ConfigError(f"threshold = {threshold!r}; allowed: 'significance', 'hifast'")
        if nsigma <= 0 or factor <= 0:
            raise ConfigError("nsigma and factor must be positive")
        self.reference_us = check_pair(reference_us, "reference_us", "us")
        self.search_range_us = check_pair(search_range_us, "search_range_us", "us")
        if batch < 1:
            raise ConfigError(f"batch = {batch}; it must be at least 1")
        if detect is not None and detect <= 0:
            raise ConfigError(f"detect = {detect}; give a positive threshold in sigma (HiFAST: 3) "
                              "or leave it out")
        if detect is not None and not protect:
            raise ConfigError("detect protects what it finds, so it needs protect = true")
        if not 0 < search_p < 1:
            raise ConfigError(f"search_p = {search_p}; give the expected number of noise peaks "
                              "per search, between 0 and 1 (default 0.001)")
        if not width_nsigma > 0:
            raise ConfigError(f"width_nsigma = {width_nsigma}; give a positive number of sigma "
                              "(default 3)")
        if not 0 <= width_fraction < 1:
            raise ConfigError(f"width_fraction = {width_fraction}; give a fraction of the peak "
                              "power in [0, 1) (default 0.01)")
        if keep_us < 0 or hifast_us < 0 or edge_fit_mhz <= 0:
            raise ConfigError("keep_us and hifast_us must be >= 0 and edge_fit_mhz > 0")
        if refuse_ratio is not None and refuse_ratio <= 1:
            raise ConfigError(f"refuse_ratio = {refuse_ratio}; give a factor above 1 (default 3) "
                              "or null to never refuse a model")
        if not isinstance(telescope, str) or (telescope.lower() not in ("auto", "none")
                                              and ripples.preset_name(telescope) is None):
            raise ConfigError(f"telescope = {telescope!r}; allowed: 'auto' (from the dataset), "
                              f"'none', or a preset: {', '.join(ripples.PRESETS)}")
        self.detect = None if detect is None else float(detect)
        self.variable = variable
        self.windows_us = (None if windows_us is None else
                           check_pairs(windows_us, "windows_us", "us", minimum=0.0, at_least_one=True))
        self.telescope = telescope
        self.search = bool(search)
        self.search_p = float(search_p)
        self.threshold = threshold
        self.nsigma = float(nsigma)
        self.factor = float(factor)
        self.keep_us = float(keep_us)
        self.adaptive_width = bool(adaptive_width)
        self.width_nsigma = float(width_nsigma)
        self.width_fraction = float(width_fraction)
        self.hifast_us = float(hifast_us)
        self.edges = bool(edges)
        self.edge_fit_mhz = float(edge_fit_mhz)
        self.refuse_ratio = None if refuse_ratio is None else float(refuse_ratio)
        self.lines = bool(lines)
        self.protect = protect
        self.protect_ranges_mhz = [list(r) for r in check_pairs(protect_ranges_mhz, "protect_ranges_mhz", "MHz")]
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
        return {"variable": self.variable,
                "windows_us": None if self.windows_us is None else [list(w) for w in self.windows_us],
                "telescope": self.telescope, "search": self.search, "search_p": self.search_p,
                "search_range_us": list(self.search_range_us),
                "threshold": self.threshold, "nsigma": self.nsigma, "factor": self.factor,
                "reference_us": list(self.reference_us), "keep_us": self.keep_us,
                "adaptive_width": self.adaptive_width, "width_nsigma": self.width_nsigma,
                "width_fraction": self.width_fraction,
                "hifast_us": self.hifast_us, "edges": self.edges,
                "edge_fit_mhz": self.edge_fit_mhz, "refuse_ratio": self.refuse_ratio,
                "lines": self.lines, "protect": self.protect,
                "protect_ranges_mhz": self.protect_ranges_mhz,
                "period_mhz": self.period_mhz, "detect": self.detect}

    def preset(self, ds: xr.Dataset) -> str | None:
        """The telescope preset used for ``ds`` (see ``telescope``)."""
        t = self.telescope.lower()
        if t == "none":
            return None
        return ripples.preset_name(ripples.dataset_telescope(ds) if t == "auto" else t)

    def plan(self, ds: xr.Dataset, data: xr.DataArray, axis: FrequencyAxis,
             protect: xr.DataArray | None, channels: np.ndarray | None,
             early: Any = None
             ) -> tuple[list[tuple[float, float]], np.ndarray, np.ndarray, np.ndarray]:
        """What the guide spectrum says about this dataset: the delay windows (us), the junk
        edge channels, the line channels and the (frequency,) channels protected in every
        spectrum (``channels`` | junk | lines). ``early(windows, shared)``, when given, is
        called before the second look for lines (which may add line channels to ``shared``)
        with copies of what is known then, so that work needing both can start meanwhile."""
        n = axis.n
        junk = np.zeros(n, bool)
        found_lines = np.zeros(n, bool)
        shared = np.zeros(n, bool) if channels is None else channels.copy()
        explicit = self.windows_us is not None
        need_guide = self.edges or (self.protect and self.lines) or (not explicit and self.search)
        guide = None
        if need_guide:
            guide = ripples.guide_spectrum(data, protect)
            if self.edges:
                junk = ripples.edge_mask(n, ripples.junk_edges(guide, axis.step_mhz))
            if self.protect and self.lines:
                found_lines = ripples.guide_lines(guide, axis, junk | shared)
        shared |= junk | found_lines
        if explicit:
            windows = list(self.windows_us)
        else:
            name = self.preset(ds)
            windows = list(ripples.PRESETS[name]) if name else []
            if self.search and guide is not None:
                filled = ripples.fill_gaps(guide, shared)
                windows += ripples.find_ripple_delays(
                    filled, axis, min_us=self.search_range_us[0],
                    max_us=self.search_range_us[1], p_false=self.search_p, skip=windows)
            windows = _usable(windows, axis)
        second = guide is not None and self.protect and self.lines and bool(windows)
        if early is not None and second:
            early(list(windows), shared.copy())
        if second:
            # a second look for lines with the ripple taken out of the guide spectrum: a
            # standing wave as strong as a faint line hides it from the first look
            try:
                # NaN channels protected up front (the filter would find them in the
                # transform and substitute again); one spectrum: one FFT thread
                clean, _ = remove_standing_waves(
                    np.where(np.isfinite(guide), guide, np.nan)[None, :],
                    (shared | ~np.isfinite(guide))[None, :], workers=1,
                    step_mhz=axis.step_mhz, windows_us=windows, nsigma=self.nsigma,
                    reference_us=self.reference_us, keep_bins=max(1, int(round(
                        self.keep_us * axis.n * axis.width_mhz))), robust_edges=True)
            except ConfigError:  # a band too narrow for these windows: no second look
                clean = None
            if clean is not None:
                more = ripples.guide_lines(clean[0], axis, junk | shared)
                found_lines |= more
                shared |= more
        return windows, junk, found_lines, shared

    def _prefill(self, data: xr.DataArray, axis: FrequencyAxis) -> Prefill | None:
        """A :class:`Prefill` of in-memory spectra (at least 2**20 values, float, laid out as
        the filter reads them), so that the output is filled while the plan is made; else
        ``None``."""
        if data.chunks is not None or axis.step_mhz < 0 or data.size < 2 ** 20:
            return None
        x = np.asarray(data.transpose(*batch_dims(data), "frequency").values)
        if x.dtype not in (np.float32, np.float64) or not x.flags.c_contiguous:
            return None
        return Prefill(x.reshape(-1, axis.n), self.batch)

    def _kwargs(self, axis: FrequencyAxis, data: xr.DataArray,
                windows: list[tuple[float, float]], reference: tuple[float, float],
                shared: np.ndarray) -> dict[str, Any]:
        """The arguments of :func:`remove_standing_waves` for this band, these windows, this
        noise reference and these channels protected in every spectrum (no ``extents``)."""
        bin_us = 1.0 / (axis.n * axis.width_mhz)
        return dict(step_mhz=axis.step_mhz, windows_us=windows, threshold=self.threshold,
                    nsigma=self.nsigma, factor=self.factor, reference_us=reference,
                    keep_bins=max(1, int(round(self.keep_us / bin_us))),
                    hifast_bins=max(1, int(round(self.hifast_us / bin_us))),
                    period_mhz=self.period_mhz, workers=self._workers(data),
                    batch=self.batch, protect_channels=shared if shared.any() else None,
                    edge_channels=max(4, int(round(self.edge_fit_mhz / axis.width_mhz))),
                    robust_edges=True, refuse_ratio=self.refuse_ratio,
                    width_nsigma=self.width_nsigma if self.adaptive_width else None,
                    width_fraction=self.width_fraction)

    def _extents(self, data: xr.DataArray, protect: xr.DataArray | None,
                 kwargs: dict[str, Any]) -> list[tuple[int, int]]:
        """The adaptive widening of every window for this dataset (:func:`measure_extents`),
        from ``EXTENT_SPECTRA`` spectra spread evenly over it (a period that drifts in time
        is seen over the whole observation); only those spectra are read."""
        dims = [*batch_dims(data), "frequency"]
        n = data.sizes["frequency"]
        arr = data.transpose(*dims).data.reshape(-1, n)
        idx = np.unique(np.linspace(0, arr.shape[0] - 1, EXTENT_SPECTRA).round().astype(np.int64))
        x = np.asarray(arr[idx])
        p = None
        if protect is not None:
            p = np.asarray(protect.broadcast_like(data).transpose(*dims).data.reshape(-1, n)[idx],
                           bool)
        keys = ("step_mhz", "windows_us", "width_nsigma", "width_fraction", "nsigma",
                "reference_us", "keep_bins", "period_mhz", "protect_channels", "edge_channels",
                "robust_edges", "workers")
        return measure_extents(x, p, **{k: kwargs[k] for k in keys})

    def __call__(self, ds: xr.Dataset) -> xr.Dataset:
        name = pick_variable(ds, self.variable)
        axis = frequency_axis(ds)
        data = frequency_chunked_once(ds[name])
        prefill = self._prefill(data, axis)
        try:
            return self._filter(ds, name, axis, data, prefill)
        finally:
            if prefill is not None:
                prefill.stop()

    def _filter(self, ds: xr.Dataset, name: str, axis: FrequencyAxis, data: xr.DataArray,
                prefill: Prefill | None) -> xr.Dataset:
        """:meth:`__call__` once the spectra are picked (``prefill``: see :meth:`_prefill`)."""
        if self.windows_us is not None:  # check them against this band now, not in a task
            remove_standing_waves(np.zeros((1, axis.n), np.float32), None,
                                  step_mhz=axis.step_mhz, windows_us=self.windows_us,
                                  threshold=self.threshold, reference_us=self.reference_us)
        protect, channels = (protection_masks(ds, data, axis, self.protect_ranges_mhz)
                             if self.protect else (None, None))
        bin_us = 1.0 / (axis.n * axis.width_mhz)
        reference = self.reference_us
        narrow = False
        if self.windows_us is None and reference[1] / bin_us - reference[0] / bin_us < 32:
            # a narrow band: measure the noise over the upper 7/8 of its delays instead
            top = (axis.n // 2) * bin_us
            reference = (top / 8, top)
            narrow = axis.n // 2 * 7 // 8 < 32  # too few delay bins to tell a ripple from noise
        adaptive = self.adaptive_width and self.threshold == "significance"
        guess: list = []  # (windows, shared, future): the widths measured during the plan

        def early(windows: list, shared: np.ndarray) -> None:
            # the second look for lines rarely finds any: measure the adaptive widths with
            # what is known now, on other threads, and keep them if it found none
            kwargs = self._kwargs(axis, data, windows, reference, shared)
            kwargs["workers"] = 1  # the other core: the main thread has its second look to do
            runner = ThreadPoolExecutor(1, thread_name_prefix="fft-standing-wave-extents")
            guess.append((windows, shared, runner.submit(self._extents, data, protect, kwargs)))
            runner.shutdown(wait=False)

        try:
            windows, junk, found_lines, shared = self.plan(
                ds, data, axis, protect, channels,
                early=early if adaptive and self.detect is None and not narrow else None)
            channels = shared if shared.any() else None
            if self.detect is not None:  # strong signals nobody masked (overtone_radio.detect)
                known = protect
                if channels is not None:
                    both = xr.DataArray(channels, dims="frequency")
                    known = both if known is None else known | both
                found = detect_mask(data, known, self.detect, step_mhz=axis.width_mhz)
                protect = found if protect is None else protect | found
            out = ds.copy()
            if narrow:
                windows = []
            if windows:
                kwargs = self._kwargs(axis, data, windows, reference, shared)
                if adaptive:
                    if guess and guess[0][0] == windows and np.array_equal(guess[0][1], shared):
                        kwargs["extents"] = guess[0][2].result()
                    else:
                        kwargs["extents"] = self._extents(data, protect, kwargs)
        finally:
            for *_, future in guess:  # not left running past this call, whatever happened
                futures_wait([future])
        if windows:
            cleaned, nbins = per_spectrum(
                lambda x, p: remove_standing_waves(x, p, prefill=prefill, **kwargs), data, protect)
            out[name] = cleaned.transpose(*ds[name].dims).assign_attrs(ds[name].attrs)
        else:  # no preset, nothing significant found: nothing to remove
            dims = batch_dims(data)
            nbins = xr.zeros_like(data.isel(frequency=0, drop=True), dtype=np.int16)
            nbins = nbins.transpose(*dims)
        out[name].attrs["sw_windows_us"] = json.dumps([[round(a, 4), round(b, 4)]
                                                       for a, b in windows])
        out["sw_bins"] = nbins.assign_attrs(
            long_name="delay bins removed by the FFT standing-wave filter "
                      "(-1: model refused as implausible)", units="1")
        out["sw_protected"] = xr.DataArray(shared, dims="frequency", attrs={
            "long_name": "channels protected in every spectrum (ranges, masks, lines found, "
                         "junk edges)"})
        if junk.any():
            edge = xr.DataArray(junk, dims="frequency")
            out[FLAG] = (ds[FLAG] | edge) if FLAG in ds.variables else edge
            out[FLAG].attrs["long_name"] = "bad channels (junk band edges included)"
        params = self.params()
        params["windows_used_us"] = [[round(a, 4), round(b, 4)] for a, b in windows]
        params["junk_edge_channels"] = [int(junk[: axis.n // 2].sum()),
                                        int(junk[axis.n // 2:].sum())]
        params["line_channels"] = int(found_lines.sum())
        record(out, self.name, __version__, params)
        return out

    def plot(self, before: xr.Dataset, after: xr.Dataset):
        """Spectrum, what was removed, and delay spectrum (|rfft|) before/after, with the
        delay windows shaded and the protected and flagged channels marked."""
        from overtone_radio.plotting import before_after

        return before_after(before, after, self.variable, title=self.name)


def _usable(windows: list[tuple[float, float]], axis: FrequencyAxis) -> list[tuple[float, float]]:
    """Windows that hold at least one delay bin of this band (one bin either side of a
    window's centre is added where it holds none); a window centred below 2 delay bins (a
    period longer than half the band) or beyond the largest delay is dropped."""
    bin_us = 1.0 / (axis.n * axis.width_mhz)
    top = (axis.n // 2) * bin_us
    out = []
    for lo, hi in windows:
        centre = 0.5 * (lo + hi)
        if centre < 2 * bin_us:
            continue
        lo, hi = min(lo, centre - bin_us), max(hi, centre + bin_us)
        lo = max(lo, bin_us)
        if lo < top and hi > lo:
            out.append((lo, min(hi, top - bin_us)))
    return out
