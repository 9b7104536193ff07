"""The blind simulator's parts behave as specified, checked with plain NumPy, and one small
blind scenario end to end."""

from __future__ import annotations

import numpy as np
import pytest
from overtone_radio.blind import (
    HOUR_S,
    BlindObservation,
    Ripple,
    draw,
    render,
    ripple_phase,
)
from overtone_radio.blindsuite import run_one


def _upward_crossings(y: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Frequencies where y crosses zero upwards, linearly interpolated."""
    i = np.flatnonzero((y[:-1] < 0) & (y[1:] >= 0))
    return f[i] + (f[i + 1] - f[i]) * (-y[i]) / (y[i + 1] - y[i])


def _only(ripple: Ripple, **kw) -> BlindObservation:
    return BlindObservation("test", 0, ripples=(ripple,), include=("ripple",), **kw)


def test_drifting_period_at_the_band_edges():
    """P goes 1.07 -> 1.11 MHz across 1000-1500 MHz: the spacing of zero crossings within
    the first and last 20 MHz is the period there (1.0708 and 1.1092 MHz at their middles),
    and the peak of a zero-padded numpy FFT of each edge piece sits at 1 / P."""
    obs = _only(Ripple(1.07, 1.11, 0.1), n_time=1)
    truth = render(obs)
    f, y = obs.frequencies(), truth.ripple[0]
    for sel, expected in ((f < 1020, 1.07 + 0.04 * 10 / 500), (f > 1480, 1.07 + 0.04 * 490 / 500)):
        zc = _upward_crossings(y[sel], f[sel])
        assert abs(np.diff(zc).mean() - expected) < 5e-4, (np.diff(zc).mean(), expected)
        piece = y[sel] * np.hanning(sel.sum())
        spec = np.abs(np.fft.rfft(piece, n=2**20))
        tau = np.fft.rfftfreq(2**20, obs.channel_mhz)
        assert abs(1 / tau[np.argmax(spec)] - expected) < 2e-3
    # and across the band the crossings count the integral of 1 / P
    cycles = (len(_upward_crossings(y, f)))
    assert abs(cycles - 500 / 0.04 * np.log(1.11 / 1.07)) <= 1


def test_period_drifts_one_percent_over_the_hour():
    """drift = 0.01: at a quarter hour (sin = 1) the period is 1% longer than at the start."""
    r = Ripple(1.09, 1.09, 0.1, drift=0.01)
    f = 1000 + np.arange(65536) * (500 / 65536)
    phi = ripple_phase(r, f, np.array([0.0, HOUR_S / 4]))
    slopes = np.gradient(phi, f, axis=1).mean(axis=1)
    periods = 2 * np.pi / slopes
    assert periods[0] == pytest.approx(1.09, rel=1e-4)
    assert periods[1] == pytest.approx(1.09 * 1.01, rel=1e-4)


def test_sawtooth_harmonics_fall_as_one_over_k():
    """A sawtooth of peak A has harmonics 2 A / (pi k): measured by numpy's FFT over a whole
    number of periods (period 128 channels, 512 periods)."""
    step = 500 / 65536
    obs = _only(Ripple(128 * step, 128 * step, 0.1, shape="sawtooth", rate_deg_s=0.0), n_time=1)
    y = render(obs).ripple[0]
    amp = 2 * np.abs(np.fft.rfft(y)) / y.size
    for k in range(1, 6):
        assert amp[512 * k] == pytest.approx(2 * 0.1 / (np.pi * k), rel=0.01), k


def test_noise_follows_the_radiometer_equation():
    """(x - T) / (T / sqrt(dnu dt)) has unit standard deviation within 0.5%, at 1 s and at
    4 s (half the noise), and the noisier band edges are noisier in proportion to T_sys."""
    for dt in (1.0, 4.0):
        obs = draw("null", 3, n_time=8, dt_s=dt)
        noisy, clean = render(obs), render(obs.without("noise"))
        noise = noisy.spectra.astype(np.float64) - clean.spectra
        total = clean.bandpass[None, :] + clean.continuum + clean.lines
        expected = total / np.sqrt(obs.channel_mhz * 1e6 * dt)
        assert np.std(noise / expected) == pytest.approx(1.0, abs=0.005)
        assert np.std(noise[:, 20:] / expected[:, 20:]) == pytest.approx(1.0, abs=0.005)
        assert np.median(expected) == pytest.approx(np.median(total) / np.sqrt(7629.39 * dt),
                                                    rel=1e-3)
    edge = noise[:, :200].std() / noise[:, 30000:31000].std()
    level = total[:, :200].mean() / total[:, 30000:31000].mean()
    assert edge == pytest.approx(level, rel=0.1) and level > 1.05


def test_twins_share_their_noise_and_seeds_are_independent():
    obs = draw("combined", 5, n_time=4, nchan=8192, f_start_mhz=1400.0)
    a, b = render(obs), render(obs.without("lines", "continuum"))
    np.testing.assert_allclose(a.spectra.astype(np.float64) - b.spectra, a.lines + a.continuum,
                               atol=1e-4)
    again = draw("combined", 5, n_time=4, nchan=8192, f_start_mhz=1400.0)
    other = draw("combined", 6, n_time=4, nchan=8192, f_start_mhz=1400.0)
    assert again == obs and other.t0_s != obs.t0_s
    assert other.ripples[0].phase0 != obs.ripples[0].phase0
    assert [line.freq_mhz for line in other.lines[1:]] != [line.freq_mhz for line in obs.lines[1:]]
    with pytest.raises(ValueError, match="scenario"):
        draw("nope", 0)


def test_a_small_blind_scenario_end_to_end():
    """Control scenario on 125 MHz (16,384 channels), 20 s, no source_mask: the filter with
    detect must cut the residual ripple to under a third of the raw one, keep every line's
    flux within 5%, and remove nothing away from the true delays."""
    rows = {r["method"]: r for r in run_one("control", 1, ["raw", "fft-detect"], n_time=20,
                                            nchan=16384, f_start_mhz=1380.0)}
    raw, fft = rows["raw"], rows["fft-detect"]
    assert raw["ripple_left"] > 2.0
    assert fft["ripple_left"] < raw["ripple_left"] / 3
    assert fft["rms_ratio"] < 1.3
    assert abs(fft["flux_worst"] - 1) < 0.05
    assert not fft["fake_run"]


def test_true_delays_hold_the_harmonics_each_shape_has():
    """A cosine with a harmonic: delays 1 / P and 2 / P; a sawtooth: every k / P up to 30 us;
    a chirp: the range of 1 / P over the band, widened by the hourly drift."""
    cos = Ripple(1.0, 1.0, 0.1, harmonic=0.25)
    saw = Ripple(1.0, 1.0, 0.1, shape="sawtooth")
    chirp = Ripple(1.07, 1.11, 0.1, drift=0.01)
    assert list(cos.harmonics()) == [1, 2] and list(Ripple(1.0, 1.0, 0.1).harmonics()) == [1]
    assert list(saw.harmonics()) == list(range(1, 31))
    lo, hi = chirp.delays_us()
    assert lo == pytest.approx(1 / (1.11 * 1.01)) and hi == pytest.approx(1 / (1.07 * 0.99))
    obs = BlindObservation("t", 0, ripples=(cos, chirp))
    assert obs.true_delays_us()[1] == pytest.approx((2.0, 2.0))


def test_flux_kept_is_exact_for_the_raw_data_with_overlapping_lines():
    """Two lines 0.3 MHz apart and a continuum source: with no cleaning, each line keeps
    exactly its own flux (the other line and the continuum in its window are not counted)."""
    from dataclasses import replace

    from overtone_radio.blind import Continuum, Line
    from overtone_radio.blindsuite import continuum_kept, flux_kept

    obs = BlindObservation("t", 0, n_time=6, nchan=4096, f_start_mhz=1390.0,
                           lines=(Line(1400.0, 0.3, 0.5, transit_s=2.0),
                                  Line(1400.3, 0.2, 1.0, transit_s=4.0)),
                           continua=(Continuum(5.0, -0.7, 3.0),))
    a, b = render(obs), render(obs.without("lines", "continuum"))
    kept = a.spectra.astype(np.float64) - b.spectra
    mean, worst = flux_kept(obs, a, kept)
    assert mean == pytest.approx(1.0, abs=1e-4) and worst == pytest.approx(1.0, abs=1e-4)
    assert continuum_kept(obs, a, kept) == pytest.approx(1.0, abs=1e-4)
    first = render(replace(obs, lines=obs.lines[:1], continua=())).lines
    _, worst = flux_kept(obs, a, kept - 0.5 * first)  # half of the first line removed
    assert worst == pytest.approx(0.5, abs=1e-3)


def test_adaptive_width_follows_a_drifting_period():
    """Ripple period 1.07 -> 1.11 MHz across 1000-1500 MHz (10 s, seed 1): its delay spreads
    over 0.901-0.935 us (17 bins), wider than +-keep_us. The adaptive kept width (default)
    must leave at most 85% of the residual ripple that the fixed +-0.02 us leaves (measured
    0.370 vs 0.474), widening the fundamental's window; on the fixed-period control ripple it
    must widen nothing and leave the residual within 0.02 (about 10%) of the fixed width's."""
    from overtone_radio.blind import to_dataset
    from overtone_radio.fftfilter import FFTStandingWave, measure_extents
    from overtone_radio.spectra import frequency_axis

    kw = dict(n_time=10, nchan=65536)
    drift = {r["method"]: r for r in run_one("drift", 1, ["fft-fixed", "fft-detect"], **kw)}
    assert drift["fft-detect"]["ripple_left"] < 0.85 * drift["fft-fixed"]["ripple_left"]
    control = {r["method"]: r for r in run_one("control", 1, ["fft-fixed", "fft-detect"], **kw)}
    assert control["fft-detect"]["ripple_left"] <= control["fft-fixed"]["ripple_left"] + 0.02
    # the widths themselves: the drifting fundamental is widened, the fixed one is not
    for scenario, widened in (("drift", True), ("control", False)):
        obs = draw(scenario, 1, **kw)
        ds = to_dataset(obs, render(obs).spectra)
        axis = frequency_axis(ds)
        keep = int(round(0.02 * axis.n * axis.width_mhz))
        ext = measure_extents(ds["spectrum"].values, None, step_mhz=axis.step_mhz,
                              windows_us=[(0.88, 0.97)], keep_bins=keep, robust_edges=True)
        assert (sum(ext[0]) > 0) == widened, (scenario, ext)
    assert FFTStandingWave().params()["adaptive_width"] is True


def test_two_polarizations_differ_as_declared_and_share_the_rest():
    """two-pol: XX and YY share bandpass, lines and continuum; YY's ripple is XX's with the
    amplitude x 0.75-1.25, harmonic x 0.7-1.3, phase +-0.6 rad, rate +-0.3 deg/s and period
    x (1 +- 0.004) that ``perturb`` declares; the rendered ripples differ by that much
    (correlation below 1, RMS ratio within the amplitude range) and the noise is independent
    (correlation of the noise below 0.02)."""
    from overtone_radio.blind import mean_of

    kw = dict(n_time=4, nchan=16384, f_start_mhz=1380.0)
    xx, yy = (draw("two-pol", 3, polarization=p, **kw) for p in ("XX", "YY"))
    assert (xx.lines, xx.continua, xx.tilt, xx.bumps, xx.t0_s) == (
        yy.lines, yy.continua, yy.tilt, yy.bumps, yy.t0_s)
    a, b = xx.ripples[0], yy.ripples[0]
    assert 0.75 <= b.amplitude_k / a.amplitude_k <= 1.25
    assert 0.7 <= b.harmonic / a.harmonic <= 1.3
    assert 0 < abs(b.phase0 - a.phase0) <= 0.6 and abs(b.rate_deg_s - a.rate_deg_s) <= 0.3
    assert 0 < abs(b.p_low / a.p_low - 1) <= 0.004 and b.p_low == b.p_high
    ra, rb = render(xx), render(yy)
    corr = np.corrcoef(ra.ripple.ravel(), rb.ripple.ravel())[0, 1]
    assert 0.0 < corr < 0.999
    na = ra.spectra - render(xx.without("noise")).spectra
    nb = rb.spectra - render(yy.without("noise")).spectra
    assert abs(np.corrcoef(na.ravel(), nb.ravel())[0, 1]) < 0.02
    m = mean_of(ra, rb)
    np.testing.assert_allclose(m.ripple, (ra.ripple + rb.ripple) / 2)
    np.testing.assert_allclose(m.sigma, ra.sigma / np.sqrt(2), rtol=0.02)
    with pytest.raises(ValueError, match="polarization"):
        draw("two-pol", 3)
    with pytest.raises(ValueError, match="polarization"):
        draw("control", 3, polarization="XX")


def test_rfi_is_where_it_was_put():
    """rfi scenario: every spike's peak channel holds its height (in the spectra it is on
    for), the 8.1 / 0.5 / 0.37 MHz combs put their teeth at start + k x period, the burst is
    flat at its height inside its band and absent outside its spectra; the RFI mask covers
    exactly those places, and the noise-free spectra minus everything else is the RFI."""
    from overtone_radio.blind import rfi

    obs = draw("rfi", 2, n_time=8)
    f, t = obs.frequencies(), np.arange(obs.n_time) * obs.dt_s
    interference, mask = rfi(obs)
    assert len(obs.spikes) == 20 and sorted(c.period_mhz for c in obs.combs) == [0.37, 0.5, 8.1]
    for s in obs.spikes:
        i = int(np.argmin(np.abs(f - s.freq_mhz)))
        on = np.ones(t.size, bool) if s.start_s is None else (
            (t + obs.dt_s > s.start_s) & (t < s.start_s + s.duration_s))
        at = s.peak_k * np.exp(-0.5 * ((f[i] - s.freq_mhz) / (s.width_ch * obs.channel_mhz)) ** 2)
        assert at > 0.6 * s.peak_k
        assert np.all(interference[on, i] >= at * (1 - 1e-9)) and mask[on, i].all()
    for c in obs.combs:
        teeth = np.arange(c.start_mhz, c.stop_mhz, c.period_mhz)
        teeth = teeth[(teeth > f[0]) & (teeth < f[-1])]
        idx = np.abs(f[:, None] - teeth[None, :]).argmin(axis=0)
        assert np.all(interference[0, idx] >= 0.85 * c.height_k) and mask[:, idx].all()
    (b,) = obs.bursts
    inside = np.abs(f - b.centre_mhz) < b.width_mhz / 2 - 0.1
    outside = np.abs(f - b.centre_mhz) > b.width_mhz / 2 + b.taper_mhz + 1
    rows = (t + obs.dt_s > b.start_s) & (t < b.start_s + b.duration_s)
    assert rows.any() and (~rows).any()
    assert np.median(interference[rows][:, inside]) >= b.peak_k
    clean = render(obs.without("noise"))
    np.testing.assert_allclose(clean.rfi, interference)
    rest = clean.spectra - clean.bandpass - clean.lines - clean.ripple - clean.continuum
    np.testing.assert_allclose(rest, interference, atol=2e-5 * clean.spectra.max())
    assert np.median(interference[rows][:, outside]) == 0
    assert clean.mask[:, idx].all()
    assert 0.001 < mask.mean() < 0.2


def test_hifast_file_round_trips_through_the_hifast_reader(tmp_path):
    """write_hifast's file opens with open_hifast (an independent reader of HiFAST's format):
    same spectra (float32, one and two polarizations), frequencies, MJDs one dt apart."""
    from overtone_radio.hifastcli import FILE_NAME, write_hifast
    from overtone_radio.readers import open_hifast

    rng = np.random.default_rng(0)
    x = rng.normal(20, 1, (5, 2, 64)).astype(np.float32)
    freq = 1400 + 0.0076 * np.arange(64)
    path = write_hifast(tmp_path / FILE_NAME, x, freq, dt_s=2.0, is_rfi=np.zeros((5, 64), bool))
    ds = open_hifast(path)
    np.testing.assert_array_equal(ds["spectrum"].values, x)
    np.testing.assert_allclose(ds["frequency"].values, freq)
    np.testing.assert_allclose(np.diff(ds["mjd"].values) * 86400, 2.0, rtol=1e-6)
    assert "-M01" in path.name and not ds["flag"].values.any()
    one = write_hifast(tmp_path / "one-M01_W-20261130-x.hdf5", x[:, 0], freq)
    np.testing.assert_array_equal(open_hifast(one)["spectrum"].values[:, 0], x[:, 0])
    with pytest.raises(ValueError, match="channels"):
        write_hifast(tmp_path / "bad.hdf5", x[:, 0, :10], freq)


def test_two_polarization_rows_and_the_mean_against_its_own_noise():
    """two-pol through run_one: rows for XX, YY and the mean; after the filter the mean's
    RMS ratio (measured against the two-polarization radiometer noise, sqrt(2) lower) is
    near 1, as each polarization's is (without the sqrt(2) it would be near 0.71)."""
    rows = {r["scenario"]: r for r in run_one("two-pol", 1, ["fft-detect"], n_time=10)}
    assert set(rows) == {"two-pol:XX", "two-pol:YY", "two-pol:mean"}
    for r in rows.values():
        assert 0.9 < r["rms_ratio"] < 1.15, (r["scenario"], r["rms_ratio"])
        assert not r["fake_run"]


def test_rfi_flaggers_keep_spikes_out_of_the_ripple():
    """rfi scenario, seed 3 (one blind-suite hour, 30 s): the filter alone fits narrow spikes
    as ripple (what it removes away from the ripple's delays is above the fake limit, 0.02
    of the noise; measured 0.105); with flag-narrow-rfi and harmonic-rfi first it is not
    (measured 1e-5), and less ripple is left (0.139 vs 0.448)."""
    rows = {r["method"]: r for r in run_one("rfi", 3, ["fft", "rfi+fft"], n_time=30)}
    assert rows["fft"]["fake"] > 0.02
    assert rows["rfi+fft"]["fake"] < 0.02
    assert rows["rfi+fft"]["ripple_left"] < rows["fft"]["ripple_left"]


def test_hifast_cli_needs_its_python():
    """Without HIFAST_PYTHON (and no python given) the HiFAST runner says what to set."""
    from overtone_radio.blind import to_dataset
    from overtone_radio.hifastcli import HIFAST_ENV, run_sw

    obs = draw("null", 0, n_time=2, nchan=16384, f_start_mhz=1380.0)
    ds = to_dataset(obs, render(obs).spectra)
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(HIFAST_ENV, raising=False)
        with pytest.raises(RuntimeError, match=HIFAST_ENV):
            run_sw(ds)
