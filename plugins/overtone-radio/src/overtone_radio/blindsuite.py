"""The blind suite: run cleaning methods on :mod:`overtone_radio.blind` observations and
measure them against the truth.

Per run (one scenario, one seed = one simulated hour, one method), the method sees the
spectra only (no ``source_mask``); it runs twice, on the observation and on its twin
without lines and continuum (same noise), and these are measured:

* ``rms_ratio``: ``rms-ratio`` with its defaults (10-spectrum x 16-channel averages, 10 MHz
  windows and edges, true line channels left out), the median over the run's groups: the
  paper's measured figure, noise and residual together;
* ``ripple_left`` (and ``ripple_left_1ch``): the residual standing wave out - (x - R) =
  R - removed, averaged over 10 spectra and binned by 16 channels (by 1), measured like
  ``rms-ratio`` (line removed per 10 MHz window, 5-sigma clip, median over windows, line
  channels left out), over the radiometer noise of that product, median T_total /
  sqrt(dnu tau): 0 is perfect, and ``rms_ratio`` is about sqrt(1 + ripple_left^2);
* ``flux_kept``: per line, the sum over its channels (within 3 FWHM) and spectra of
  (output - output of the twin) less the continuum and the other lines injected there, over
  the line's injected sum; the mean and the worst over the
  run's lines (the Milky Way line included);
* ``continuum_kept``: the same sum over every channel outside the lines (10 MHz edges left
  out) over the injected continuum sum, where a continuum source is present;
* ``fake``: the RMS, per raw spectrum, of what the method removed (x - out) at delays
  0.2-30 us that lie more than 0.05 us from every true ripple delay and harmonic (a cosine's
  first two, a sawtooth's all), over the raw radiometer noise; a run counts as a fake subtraction when it
  exceeds ``FAKE_LIMIT`` (0.02: 2% of the noise RMS, what one false 5-sigma detection with
  its +-10 kept bins removes). Line flux a method takes at those delays counts too.

Two polarizations (:data:`overtone_radio.blind.POLARIZED`): each method runs on XX and on YY
apart (per polarization), and rows ``SCENARIO:XX``, ``SCENARIO:YY`` and ``SCENARIO:mean``
are measured; the mean row measures (out_XX + out_YY) / 2 against the mean truth and the
mean's own noise (``rms_ratio`` times sqrt(2): the radiometer equation of a two-polarization
mean). RFI (scenario ``rfi``): the truth's RFI channels are left out of every measurement
like the line channels; RFI a method fits as ripple shows in ``ripple_left`` (it spreads over
all channels) and in ``fake`` (the combs sit at 0.123, 2.0, 2.7 us and multiples).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import xarray as xr

from overtone_radio.blind import (
    POLARIZED,
    BlindObservation,
    Rendered,
    draw,
    mean_of,
    render,
    to_dataset,
)
from overtone_radio.rms import RMSRatio, window_rms

FAKE_LIMIT = 0.02
AVERAGE, BIN = 10, 16
EDGE_MHZ = WINDOW_MHZ = 10.0


def _pybaselines_arpls(ds: xr.Dataset) -> np.ndarray:
    """pybaselines ``arpls`` (lam = 1e4) per spectrum, its baseline removed and its mean level
    added back (as in benchmarks/bench_radio.py)."""
    from pybaselines import Baseline

    v = ds["spectrum"].values
    fitter = Baseline(ds["frequency"].values)
    base = np.stack([fitter.arpls(row, lam=1e4)[0] for row in v])
    return (v - base + base.mean(axis=1, keepdims=True)).astype(np.float32)


def _rfi_pipeline(ds: xr.Dataset) -> np.ndarray:
    """What a user runs on RFI-laden spectra: ``flag-narrow-rfi``, then ``harmonic-rfi``
    (both OR their finds into ``flag``), then ``fft-standing-wave`` (defaults: flagged
    channels are substituted before the FFT); the output keeps the RFI channels' values."""
    from overtone_radio.channels import NarrowRFIFlagger
    from overtone_radio.fftfilter import FFTStandingWave
    from overtone_radio.rfi import HarmonicRFI

    return FFTStandingWave()(HarmonicRFI()(NarrowRFIFlagger()(ds)))["spectrum"].values


def methods() -> dict[str, Callable[[xr.Dataset], np.ndarray]]:
    """Method name -> function from a blind Dataset to its cleaned spectra (time, frequency).
    ``fft``: ``fft-standing-wave`` with its defaults (telescope preset, ripple search, junk
    edges, lines of the guide spectrum, the Milky Way range); ``fft-detect``: the same with
    ``detect = 3`` (automatic protection per spectrum); ``fft-wide``: ``fft-fixed`` keeping
    +-0.04 us around each peak instead of +-0.02 (a chirped ripple spreads wider);
    ``fft-fixed``: ``fft-detect`` with ``adaptive_width = false`` (+-0.02 us alone); ``sine-fit`` and ``running-median``
    with their defaults; ``arpls``: pybaselines (an outside peer); ``rfi+fft``:
    ``flag-narrow-rfi``, ``harmonic-rfi``, then ``fft`` (:func:`_rfi_pipeline`);
    ``hifast-cli``: HiFAST's own command-line pipeline in an outside Python
    (:mod:`overtone_radio.hifastcli`, only where ``HIFAST_PYTHON`` is set)."""
    from overtone_radio.baselines import RunningMedian, SineFit
    from overtone_radio.fftfilter import FFTStandingWave

    def via(proc):
        return lambda ds: proc(ds)["spectrum"].values

    return {"raw": lambda ds: ds["spectrum"].values,
            "fft": via(FFTStandingWave()),
            "fft-detect": via(FFTStandingWave(detect=3.0)),
            "fft-wide": via(FFTStandingWave(detect=3.0, keep_us=0.04, adaptive_width=False)),
            "fft-fixed": via(FFTStandingWave(detect=3.0, adaptive_width=False)),
            "sine-fit": via(SineFit()),
            "running-median": via(RunningMedian()),
            "arpls": _pybaselines_arpls,
            "rfi+fft": _rfi_pipeline,
            "hifast-cli": _hifast_cli}


def _hifast_cli(ds: xr.Dataset) -> np.ndarray:
    """HiFAST's ``python -m hifast.sw --method fft`` with its CLI defaults, in the Python of
    ``HIFAST_PYTHON`` (see :mod:`overtone_radio.hifastcli`)."""
    from overtone_radio.hifastcli import run_sw

    return run_sw(ds)


def _groups(a: np.ndarray, mask: np.ndarray | None, average: int, binning: int) -> np.ndarray:
    """(n_time, n) -> (groups, n // binning): means over ``average`` spectra and ``binning``
    channels; NaN where any channel of a bin is masked in any spectrum of its group."""
    g = a.shape[0] // average
    n = (a.shape[1] // binning) * binning
    x = a[: g * average, :n].reshape(g, average, n).mean(axis=1)
    if mask is not None:
        m = mask[: g * average, :n].reshape(g, average, n).any(axis=1)
        x = np.where(m, np.nan, x)
    return x.reshape(g, n // binning, binning).mean(axis=2)


def ripple_left(obs: BlindObservation, truth: Rendered, removed: np.ndarray,
                binning: int = BIN, npol: int = 1) -> float:
    """Residual standing wave (R - removed) RMS over the radiometer noise of the
    ``AVERAGE``-spectrum x ``binning``-channel product (see the module docstring) of a mean
    of ``npol`` polarizations."""
    resid = truth.ripple - removed
    g = _groups(resid, truth.mask, AVERAGE, binning)
    width = obs.channel_mhz * binning
    std, _ = window_rms(g, int(round(EDGE_MHZ / width)), max(8, int(round(WINDOW_MHZ / width))))
    total = truth.bandpass[None, :] + truth.continuum + truth.lines + truth.ripple
    level = _groups(total, None, AVERAGE, binning)
    expected = np.median(level, axis=1) / np.sqrt(width * 1e6 * AVERAGE * obs.dt_s * npol)
    return float(np.nanmedian(std / expected))


def fake_rms(obs: BlindObservation, truth: Rendered, removed: np.ndarray) -> float:
    """RMS per raw spectrum of ``removed`` at delays 0.2-30 us away (> 0.05 us) from every
    true ripple delay range and harmonic, over the raw radiometer noise."""
    n = removed.shape[1]
    tau = np.fft.rfftfreq(n, obs.channel_mhz)
    keep = (tau >= 0.2) & (tau <= 30.0)
    for lo, hi in obs.true_delays_us():
        keep &= ~((tau > lo - 0.05) & (tau < hi + 0.05))
    spec = np.fft.rfft(removed, axis=1)[:, keep]
    power = 2.0 * (np.abs(spec) ** 2).sum(axis=1) / n**2  # Parseval: mean square per channel
    sigma = np.median(truth.sigma)
    return float(np.sqrt(power.mean()) / sigma)


def flux_kept(obs: BlindObservation, truth: Rendered, kept: np.ndarray) -> tuple[float, float]:
    """Mean and worst-|error| ratio over the lines of (kept sum / injected sum) within
    3 FWHM of each line; ``kept`` = output - output of the twin without sources."""
    f = obs.frequencies()
    ratios = []
    t = np.arange(obs.n_time) * obs.dt_s
    for line in obs.lines:
        sel = np.abs(f - line.freq_mhz) < 3 * line.fwhm_mhz
        prof = np.exp(-4 * np.log(2) * ((f[sel] - line.freq_mhz) / line.fwhm_mhz) ** 2)
        tprof = np.ones(t.size) if line.transit_s is None else np.exp(
            -4 * np.log(2) * ((t - line.transit_s) / line.duration_s) ** 2)
        injected = line.peak_k * prof.sum() * tprof.sum()
        if injected <= 0 or not sel.any():
            continue
        # the continuum and every other line within the window are not this line's flux
        others = truth.lines[:, sel].sum() - injected
        got = kept[:, sel].sum() - truth.continuum[:, sel].sum() - others
        ratios.append(got / injected)
    if not ratios:
        return np.nan, np.nan
    r = np.array(ratios)
    return float(r.mean()), float(r[np.argmax(np.abs(r - 1))])


def continuum_kept(obs: BlindObservation, truth: Rendered, kept: np.ndarray) -> float:
    """(kept - lines) summed outside the lines and 10 MHz edges over the injected continuum."""
    if not obs.continua:
        return np.nan
    f = obs.frequencies()
    sel = (f > f[0] + EDGE_MHZ) & (f < f[-1] - EDGE_MHZ)
    for line in obs.lines:
        sel &= np.abs(f - line.freq_mhz) > 3 * line.fwhm_mhz
    injected = truth.continuum[:, sel].sum()
    return float((kept[:, sel] - truth.lines[:, sel]).sum() / injected)


def _measure(obs: BlindObservation, truth: Rendered, out: np.ndarray, out_twin: np.ndarray,
             npol: int = 1) -> dict:
    """The metrics (module docstring) of one method's output ``out`` and its twin's."""
    ds = to_dataset(obs, out.astype(np.float32))
    measured = ds.assign(source_mask=xr.DataArray(truth.mask, dims=("time", "frequency")))
    ratio = float(np.nanmedian(RMSRatio()(measured)["rms_ratio"].values)) * np.sqrt(npol)
    removed = truth.spectra.astype(np.float64) - out
    kept = out - out_twin
    mean_flux, worst_flux = flux_kept(obs, truth, kept)
    fake = fake_rms(obs, truth, removed)
    return {"t0_s": obs.t0_s, "rms_ratio": ratio,
            "ripple_left": ripple_left(obs, truth, removed, npol=npol),
            "ripple_left_1ch": ripple_left(obs, truth, removed, binning=1, npol=npol),
            "flux_kept": mean_flux, "flux_worst": worst_flux,
            "continuum_kept": continuum_kept(obs, truth, kept),
            "fake": fake, "fake_run": bool(fake > FAKE_LIMIT)}


def run_one(scenario: str, seed: int, names: list[str] | None = None, **draw_kw) -> list[dict]:
    """Every method (or ``names``) on one observation of ``scenario`` for ``seed``: one row
    of metrics per method (see the module docstring), with ``seconds`` (the method's wall
    time on both twins); for a two-polarization scenario three rows per method (``:XX``,
    ``:YY``, ``:mean``; ``seconds`` for both polarizations on each)."""
    pols = POLARIZED.get(scenario, ("",))
    obs = {p: draw(scenario, seed, polarization=p, **draw_kw) for p in pols}
    twin_obs = {p: o.without("lines", "continuum") for p, o in obs.items()}
    truth = {p: render(o) for p, o in obs.items()}
    twin = {p: render(o) for p, o in twin_obs.items()}
    table = methods()
    rows = []
    for name in names or list(table):
        fn = table[name]
        start = time.perf_counter()
        out, out_twin = {}, {}
        for p in pols:
            out[p] = np.asarray(fn(to_dataset(obs[p], truth[p].spectra)), np.float64)
            out_twin[p] = np.asarray(fn(to_dataset(twin_obs[p], twin[p].spectra)), np.float64)
        seconds = time.perf_counter() - start
        for p in pols:
            label = f"{scenario}:{p}" if p else scenario
            rows.append({"scenario": label, "seed": seed, "method": name,
                         **_measure(obs[p], truth[p], out[p], out_twin[p]), "seconds": seconds})
        if len(pols) == 2:
            a, b = pols
            mean = mean_of(truth[a], truth[b])
            row = _measure(obs[a], mean, (out[a] + out[b]) / 2, (out_twin[a] + out_twin[b]) / 2,
                           npol=2)
            rows.append({"scenario": f"{scenario}:mean", "seed": seed, "method": name, **row,
                         "seconds": seconds})
    return rows
