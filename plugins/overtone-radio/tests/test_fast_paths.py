"""The filter's faster paths give the same numbers as the plain ones: the batch median, the
prefilled output buffer, the cached plan, and substitution with a shared mask or in place."""

from __future__ import annotations

import numpy as np
import pytest
from overtone_radio import fftfilter
from overtone_radio.fftfilter import FFTStandingWave, Prefill, remove_standing_waves, row_median
from overtone_radio.protect import substitute


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("width", [1, 2, 7, 16, 1072, 1073])
def test_row_median_is_numpy_median(dtype, width):
    """row_median equals np.median(axis=1) value for value, ties, NaN rows and dtype included
    (one selection at the upper middle; the lower middle is the largest value before it)."""
    rng = np.random.default_rng(width)
    a = rng.normal(size=(11, width)).astype(dtype)
    a[1] = np.round(a[1])  # ties
    a[2, width // 2] = np.nan
    a[3, -1] = np.nan
    a[4, : width // 2 + 1] = np.nan  # more than half NaN
    a[5] = np.nan
    a[6] = np.abs(np.round(a[6] / 4))  # mostly zeros
    with np.errstate(invalid="ignore"):
        expected = np.median(a, axis=1)
    got = row_median(a)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


@pytest.fixture(scope="module")
def band():
    """24 spectra x 65,536 channels with per-spectrum masks, a NaN stretch and a NaN row."""
    from overtone_radio.simulate import Observation, simulate

    ds = simulate(Observation(n_time=24)).compute()
    x = ds["spectrum"].values.copy()
    x[3, 1000:1010] = np.nan
    x[5] = np.nan
    return ds.assign(spectrum=(ds["spectrum"].dims, x, ds["spectrum"].attrs))


def test_prefilled_output_gives_the_same_spectra(band, monkeypatch):
    """In memory the output buffer is filled while the plan is made (Prefill); the result is
    bit for bit the one of the path without it (Fortran-ordered data: no prefill)."""
    used = []
    matches = Prefill.matches

    def spy(self, rows, batch):
        used.append(matches(self, rows, batch))
        return used[-1]

    monkeypatch.setattr(Prefill, "matches", spy)
    fast = FFTStandingWave(batch=8)(band)
    assert used == [True]
    plain_x = np.asfortranarray(band["spectrum"].values)
    plain = FFTStandingWave(batch=8)(band.assign(spectrum=(band["spectrum"].dims, plain_x)))
    assert used == [True]  # no prefill for data not laid out as the filter reads them
    for name in ("spectrum", "sw_bins", "sw_protected"):
        np.testing.assert_array_equal(fast[name].values, plain[name].values, err_msg=name)
    assert int((fast["sw_bins"].values > 0).sum()) > 10  # the ripple was found and removed
    assert np.isnan(fast["spectrum"].values[5]).all()


def test_a_prefill_of_other_spectra_is_ignored():
    """remove_standing_waves uses a Prefill only for the very spectra and batch it copies."""
    rng = np.random.default_rng(1)
    n = 8192
    x = (rng.normal(size=(40, n)) + 3 * np.sin(2 * np.pi * np.arange(n) * 0.0076 / 1.09)).astype(np.float32)
    kwargs = dict(step_mhz=0.0076, batch=16)
    plain, counts = remove_standing_waves(x, None, **kwargs)
    for prefill in (Prefill(x.copy(), 16), Prefill(x, 8)):
        out, c = remove_standing_waves(x, None, prefill=prefill, **kwargs)
        assert not np.shares_memory(out, prefill.out)
        np.testing.assert_array_equal(out, plain)
        np.testing.assert_array_equal(c, counts)
    same = Prefill(x, 16)
    out, _ = remove_standing_waves(x, None, prefill=same, **kwargs)
    assert np.shares_memory(out, same.out)
    np.testing.assert_array_equal(out, plain)
    assert (counts > 0).all()


def test_the_plan_is_made_once_and_read_only():
    """Plans are cached per set of arguments; their arrays cannot be written by a batch."""
    args = (4096, 0.0076, [(0.88, 0.97)], "significance", 5.0, 1.4, (5.0, 50.0), 10, 5, None,
            np.dtype(np.float32), 16, True, 3.0)
    one = fftfilter._plan(*args)
    assert fftfilter._plan(*args) is one
    with pytest.raises(ValueError):
        one.ref_line[0] = 0
    other = fftfilter._plan(*args[:2], [(1.78, 1.92)], *args[3:])
    assert other is not one


def test_substitution_with_a_shared_mask_and_in_place():
    """substitute(x, p, channels=c) equals substitute(x, p | c), also written into x itself."""
    rng = np.random.default_rng(5)
    rows, n, period = 12, 3000, 41.7
    x = rng.normal(size=(rows, n)).astype(np.float32)
    p = np.zeros((rows, n), bool)
    for r in range(rows):
        a = int(rng.integers(0, n - 200))
        p[r, a:a + int(rng.integers(1, 200))] = True
    c = np.zeros(n, bool)
    c[0:7] = c[1400:1460] = c[n - 20:] = True
    joined, empty, (jr, jc) = substitute(x, p | c, period)
    shared, empty2, (sr, sc) = substitute(x, p, period, channels=c)
    np.testing.assert_array_equal(shared, joined)
    np.testing.assert_array_equal(empty2, empty)
    inplace = x.copy()
    got, _, _ = substitute(inplace, p, period, out=inplace, channels=c)
    assert got is inplace
    np.testing.assert_array_equal(inplace, joined)
    written = np.zeros((rows, n), bool)
    written[sr, sc] = True
    np.testing.assert_array_equal(written, p | c)


def test_a_failed_background_copy_is_redone_by_the_worker(monkeypatch):
    """If the prefill thread fails to copy a batch, the worker that needs it copies it again:
    the output is still right."""
    import threading

    copy = Prefill._copy

    def flaky(self, i):
        if threading.current_thread().name == "fft-standing-wave-prefill":
            raise MemoryError("simulated")
        copy(self, i)

    monkeypatch.setattr(Prefill, "_copy", flaky)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(48, 4096)).astype(np.float32)
    plain, _ = remove_standing_waves(x, x > 2.5, step_mhz=0.0076, batch=16)
    prefill = Prefill(x, 16)
    prefill._thread.join()
    assert prefill._failed == {0}
    out, _ = remove_standing_waves(x, x > 2.5, step_mhz=0.0076, batch=16, prefill=prefill)
    assert np.shares_memory(out, prefill.out)
    np.testing.assert_array_equal(out, plain)


@pytest.fixture(scope="module")
def drifting():
    """10 spectra of the blind suite's drifting period (seed 1): its fundamental is widened."""
    from overtone_radio.blind import draw, render, to_dataset

    obs = draw("drift", 1, n_time=10, nchan=65536)
    return to_dataset(obs, render(obs).spectra)


def test_extents_measured_in_parts_equal_one_part(drifting):
    """measure_extents splits its spectra over threads; the widths do not depend on how."""
    from overtone_radio.fftfilter import measure_extents
    from overtone_radio.spectra import frequency_axis

    axis = frequency_axis(drifting)
    x = drifting["spectrum"].values
    p = np.zeros(x.shape, bool)
    p[:, 30000:30400] = True  # substitution runs in every part
    kwargs = dict(step_mhz=axis.step_mhz, windows_us=[(0.88, 0.97), (1.78, 1.92)],
                  keep_bins=10, robust_edges=True)
    one = measure_extents(x, p, workers=1, **kwargs)
    assert sum(one[0]) > 0  # the drifting fundamental is widened
    for workers in (2, 3, 7):
        assert measure_extents(x, p, workers=workers, **kwargs) == one


def _spy_extents(monkeypatch) -> list:
    """Record the shared protected channels of every adaptive-width measurement."""
    measured = []
    own = FFTStandingWave._extents

    def spy(self, data, protect, kwargs):
        measured.append(kwargs["protect_channels"])
        return own(self, data, protect, kwargs)

    monkeypatch.setattr(FFTStandingWave, "_extents", spy)
    return measured


def test_widths_are_measured_again_when_the_second_look_finds_lines(drifting, monkeypatch):
    """The adaptive widths are measured while the second look for lines runs, with the
    channels protected before it; when that look finds lines they are measured again with
    them, and the output is bit for bit the one of measuring them after the plan."""
    from overtone_radio import ripples

    extra = np.zeros(drifting.sizes["frequency"], bool)
    extra[20000:20300] = True
    calls = []
    guide_lines = ripples.guide_lines

    def second_finds_more(*args, **kwargs):
        calls.append(1)
        found = guide_lines(*args, **kwargs)
        return found | extra if len(calls) % 2 == 0 else found

    monkeypatch.setattr(ripples, "guide_lines", second_finds_more)
    measured = _spy_extents(monkeypatch)
    windows = [[0.88, 0.97], [1.78, 1.92]]
    got = FFTStandingWave(windows_us=windows)(drifting)
    assert len(calls) == 2 and len(measured) == 2
    assert not measured[0][extra].any() and measured[1][extra].all()
    np.testing.assert_array_equal(measured[1], got["sw_protected"].values)
    plan = FFTStandingWave.plan
    monkeypatch.setattr(FFTStandingWave, "plan",
                        lambda self, *args, early=None: plan(self, *args))  # no early start
    after = FFTStandingWave(windows_us=windows)(drifting)
    assert len(measured) == 3
    for name in ("spectrum", "sw_bins", "sw_protected"):
        np.testing.assert_array_equal(got[name].values, after[name].values, err_msg=name)
    assert int((got["sw_bins"].values > 21).sum()) > 0  # some window kept more than +-10 bins


def test_widths_measured_during_the_second_look_are_used_when_it_finds_no_line(band, monkeypatch):
    """On the simulated FAST band the second look finds no new line: one measurement."""
    measured = _spy_extents(monkeypatch)
    out = FFTStandingWave()(band)
    assert len(measured) == 1
    np.testing.assert_array_equal(measured[0], out["sw_protected"].values)


def _junk_start_whole_profile(seg: np.ndarray, w: int, s0: float, zone: int) -> int:
    """junk_edges' first cut at one end from the running median over the whole stretch."""
    from scipy.ndimage import median_filter

    prof = median_filter(np.abs(np.diff(seg)), size=w, mode="mirror")
    bad = (prof > 1.5 * s0) | (prof < s0 / 1.5)
    run = np.convolve(bad, np.ones(w // 4, int), mode="valid")  # bad channels per w / 4
    clean = np.flatnonzero(run == 0)
    return min(int(clean[0]) if clean.size else zone, zone)


@pytest.mark.parametrize("seed", range(12))
def test_junk_edges_running_median_on_a_prefix_equals_the_whole(seed):
    """junk_edges takes the scatter's running median over a growing prefix of each end; the
    junk found (spikes left out) is the one of the running median over the whole stretch."""
    from overtone_radio.ripples import junk_edges

    rng = np.random.default_rng(seed)
    n = int(rng.choice([3000, 8192, 65536]))
    x = rng.normal(size=n)
    kind = seed % 4
    if kind == 1:  # a noisy low end, up to a fifth of the band
        x[: rng.integers(300, n // 5)] *= rng.uniform(3, 5)
    elif kind == 2:  # a quiet high end (raw counts rolling off)
        x[-rng.integers(300, n // 5):] *= rng.uniform(0.1, 0.3)
    elif kind == 3:  # roll-off decaying into the band
        x = x * (1 + 3 * np.exp(-np.arange(n) / rng.uniform(10, n / 4)))
    w, zone = 64, int(0.15 * n)
    d = np.abs(np.diff(x))
    s0 = float(np.median(d[n // 4: 3 * n // 4: 2]))
    span = min(n, zone + 3 * w)
    expected = [_junk_start_whole_profile(seg, w, s0, zone) for seg in (x[:span], x[::-1][:span])]
    assert junk_edges(x, 0.0076, spike_sigma=np.inf) == tuple(expected)
    if kind:
        assert max(expected) > 0


def test_junk_edges_no_clean_stretch_from_the_end_of_a_prefix():
    """A short in-family gap inside the junk, right where the first prefix ends (512
    channels): the running median there must be the whole stretch's (junk), not the prefix's
    mirrored end (in-family)."""
    from overtone_radio.ripples import junk_edges

    x = np.random.default_rng(3).normal(size=8192)
    x[:480] *= 4
    x[510:1100] *= 4
    start = _junk_start_whole_profile(x[:1420], 64, float(np.median(np.abs(np.diff(x))[2048:6144:2])),
                                      int(0.15 * 8192))
    assert start >= 1100
    assert junk_edges(x, 0.0076, spike_sigma=np.inf)[0] == start
