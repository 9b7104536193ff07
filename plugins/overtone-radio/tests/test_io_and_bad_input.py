"""Readers, writers, the CLI, dask paths and documented behaviour on bad input."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import xarray as xr
from overtone import DatasetError
from overtone.io import open_dataset, write_dataset
from overtone.runschema import history_entries
from overtone_radio.fftfilter import FFTStandingWave, remove_standing_waves
from overtone_radio.readers import open_fits, open_hifast
from overtone_radio.rms import RMSRatio
from overtone_radio.simulate import Observation, simulate, write_fast_fits


def test_simulation_does_not_depend_on_chunking():
    obs = Observation(n_time=10, nchan=2048)
    a = simulate(obs, chunks=3)["spectrum"].values
    b = simulate(obs, chunks=10)["spectrum"].values
    np.testing.assert_array_equal(a, b)


def test_fast_fits_round_trip_is_lazy_and_exact(tmp_path, small):
    path = write_fast_fits(small, tmp_path / "obs.fits")
    ds = open_fits(path, chunks={"time": 5})
    assert ds["spectrum"].chunks is not None and ds["spectrum"].dims == ("time", "polarization", "frequency")
    np.testing.assert_array_equal(ds["spectrum"].sel(polarization="XX").values, small["spectrum"].values)
    np.testing.assert_allclose(ds["frequency"].values, small["frequency"].values, atol=1e-9)
    assert ds["spectrum"].attrs["units"] == "K"
    mean = open_dataset(path, chunks={"time": 8})  # dispatch through the core by suffix
    assert mean.sizes["time"] == 24


@pytest.mark.filterwarnings("ignore:File may have been truncated")
def test_truncated_fits_is_an_error(tmp_path, small):
    path = write_fast_fits(small, tmp_path / "obs.fits")
    data = path.read_bytes()
    cut = tmp_path / "cut.fits"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match="truncated"):
        open_fits(cut)


def test_sdfits_and_hifast_readers(tmp_path):
    import h5py
    from astropy.io import fits

    rng = np.random.default_rng(0)
    spec = rng.normal(20, 0.2, (6, 256)).astype(np.float32)
    cols = [fits.Column("DATA", "256E", unit="K", array=spec),
            fits.Column("CRVAL1", "D", array=np.full(6, 1.42e9)),
            fits.Column("CDELT1", "D", array=np.full(6, 1e4)),
            fits.Column("CRPIX1", "D", array=np.full(6, 1.0)),
            fits.Column("EXPOSURE", "D", array=np.full(6, 2.0))]
    hdu = fits.BinTableHDU.from_columns(cols, name="SINGLE DISH")
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(tmp_path / "gbt.fits")
    ds = open_fits(tmp_path / "gbt.fits")
    np.testing.assert_array_equal(ds["spectrum"].values, spec)
    assert ds["frequency"].values[1] - ds["frequency"].values[0] == pytest.approx(0.01)
    with h5py.File(tmp_path / "x-M01.hdf5", "w") as h5:
        g = h5.create_group("S")
        g["T"] = spec[None].repeat(2, 0)
        g["freq"] = 1420 + 0.01 * np.arange(256)
        g["mjd"] = 60000 + np.arange(6) / 86400
    hf = open_hifast(tmp_path / "x-M01.hdf5", chunks=3)
    assert hf["spectrum"].dims == ("time", "polarization", "frequency")
    np.testing.assert_array_equal(hf["spectrum"].isel(polarization=1).values, spec)


def test_netcdf_and_zarr_round_trip(tmp_path, small):
    out = FFTStandingWave()(small)
    for name in ("clean.nc", "clean.zarr"):
        write_dataset(out, tmp_path / name)
        back = open_dataset(tmp_path / name)
        np.testing.assert_allclose(back["spectrum"].values, out["spectrum"].values, rtol=0, atol=0)


def test_dask_path_is_lazy_and_equals_numpy(small):
    lazy = FFTStandingWave()(small)
    assert lazy["spectrum"].chunks is not None
    eager = FFTStandingWave()(small.compute())
    np.testing.assert_allclose(lazy["spectrum"].values, eager["spectrum"].values, atol=1e-5)
    np.testing.assert_array_equal(lazy["sw_bins"].values, eager["sw_bins"].values)


def test_local_cluster_equals_in_memory(small):
    from dask.distributed import Client, LocalCluster

    eager = FFTStandingWave()(small.compute())["spectrum"].values
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster, Client(cluster):
        distributed = FFTStandingWave()(small)["spectrum"].compute().values
    np.testing.assert_allclose(distributed, eager, atol=1e-5)


def test_against_float64_numpy_reference():
    """A band holding a whole number of ripple periods: the kept bins are exactly the ripple,
    so float32 scipy.fft must match a float64 numpy.fft computation to float32 precision."""
    n, step = 8192, 500 / 65536
    rng = np.random.default_rng(3)
    cycles = 57
    ripple = 0.08 * np.cos(2 * np.pi * cycles * np.arange(n) / n + 0.3)
    x = (20 + ripple + 0.2 * rng.standard_normal((4, n))).astype(np.float32)
    out, nb = remove_standing_waves(x, None, step_mhz=step, windows_us=[(0.88, 0.97)], keep_bins=1)
    assert (nb == 3).all()
    x64 = x.astype(np.float64)
    left, right = x64[:, :16].mean(1), x64[:, -16:].mean(1)
    centre = np.arange(n) - 7.5
    line = left[:, None] + (right - left)[:, None] * centre / (n - 16)
    X = np.fft.rfft(x64 - line, axis=1)
    keep = np.zeros_like(X)
    peak = np.argmax(np.abs(X[:, 50:70]), axis=1) + 50
    for r in range(4):
        keep[r, peak[r] - 1:peak[r] + 2] = X[r, peak[r] - 1:peak[r] + 2]
    ref = x - np.fft.irfft(keep, n=n, axis=1)
    np.testing.assert_allclose(out, ref, atol=2e-4)
    assert np.abs(out - x + ripple).std() < 0.01


def test_pure_noise_significance_finds_nothing_hifast_mode_does():
    obs = Observation(n_time=16, nchan=8192, include=("noise",), combs=())
    ds = simulate(obs).compute()
    assert (FFTStandingWave()(ds)["sw_bins"].values == 0).mean() >= 0.9
    assert (FFTStandingWave(threshold="hifast")(ds)["sw_bins"].values > 0).all()


def test_decreasing_axis_is_the_mirror_image(small):
    ds = small.compute()
    up = FFTStandingWave()(ds)
    down = FFTStandingWave()(ds.isel(frequency=slice(None, None, -1)))
    np.testing.assert_allclose(down["spectrum"].isel(frequency=slice(None, None, -1)).values,
                               up["spectrum"].values, atol=1e-4)


def test_nan_channels_stay_nan_and_all_flagged_spectra_pass_unchanged(small):
    ds = small.compute()
    x = ds["spectrum"].values.copy()
    x[3, 100:140] = np.nan
    ds["spectrum"].values[:] = x
    flag = np.zeros(x.shape, bool)
    flag[5] = True
    ds["flag"] = (("time", "frequency"), flag)
    out = FFTStandingWave()(ds)
    y = out["spectrum"].values
    assert np.isnan(y[3, 100:140]).all() and np.isfinite(y[3, :100]).all()
    np.testing.assert_array_equal(y[5], x[5])
    assert out["sw_bins"].values[5] == 0
    assert np.isnan(RMSRatio(average=1)(out)["rms_ratio"].values[5])


@pytest.mark.parametrize("case, match", [
    ("nonuniform", "not uniform"), ("units", "no 'units'"), ("dims", "frequency"),
    ("unsorted", "not monotonic")])
def test_bad_axes_are_clear_errors(small, case, match):
    ds = small.isel(time=slice(0, 2)).compute()
    if case == "nonuniform":
        f = ds["frequency"].values.copy()
        f[2000:] += 0.05
        ds = ds.assign_coords(frequency=("frequency", f, {"units": "MHz"}))
    elif case == "units":
        ds["frequency"].attrs.pop("units")
    elif case == "dims":
        ds = ds.rename(frequency="chan")
    else:
        f = ds["frequency"].values.copy()
        f[10], f[11] = f[11], f[10]
        ds = ds.assign_coords(frequency=("frequency", f, {"units": "MHz"}))
    with pytest.raises(DatasetError, match=match):
        FFTStandingWave()(ds)


def test_cli_process_fits_with_plots(tmp_path, small):
    path = write_fast_fits(small.isel(time=slice(0, 16)), tmp_path / "obs.fits")
    out = tmp_path / "clean.nc"
    cmd = [sys.executable, "-m", "overtone", "process", str(path), "--with",
           "fft-standing-wave,harmonic-rfi", "--param", "harmonic-rfi.nsigma=4.0", "-o", str(out),
           "--chunks", "8", "--plot", str(tmp_path / "plot.png")]
    run = subprocess.run(cmd, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    ds = xr.open_dataset(out, engine="h5netcdf")
    assert "sw_bins" in ds and "rfi_mask" in ds and "fft-standing-wave" in [
        e["component"] for e in history_entries(ds)]
    assert (tmp_path / "plot.fft-standing-wave.png").stat().st_size > 10_000
    assert (tmp_path / "plot.harmonic-rfi.png").stat().st_size > 10_000


def test_cli_process_joins_the_fits_pieces_of_one_observation(tmp_path, small):
    """FAST writes an observation as obs_0001.fits, obs_0002.fits, ...: processed together
    they give exactly what the same spectra in one file give, with time (UTC from UTOBS)
    increasing through the join."""
    ds = small.isel(time=slice(0, 24)).compute()
    whole = write_fast_fits(ds, tmp_path / "whole.fits")
    pieces = [write_fast_fits(ds.isel(time=rows), tmp_path / f"obs_{i + 1:04d}.fits")
              for i, rows in enumerate((slice(0, 10), slice(10, 24)))]
    for inputs, out in ((pieces, "joined.nc"), ([whole], "single.nc")):
        cmd = [sys.executable, "-m", "overtone", "process", *map(str, inputs), "--with",
               "fft-standing-wave", "-o", str(tmp_path / out), "--chunks", "8", "-q"]
        run = subprocess.run(cmd, capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
    with open_dataset(tmp_path / "joined.nc") as joined, open_dataset(tmp_path / "single.nc") as single:
        np.testing.assert_array_equal(joined["spectrum"].values, single["spectrum"].values)
        np.testing.assert_array_equal(joined["time"].values, single["time"].values)
        assert joined["time"].dtype.kind == "M" and (np.diff(joined["time"].values) > np.timedelta64(0)).all()
        np.testing.assert_allclose(np.diff(joined["time"].values) / np.timedelta64(1, "s"), 1.0, atol=1e-5)


def test_substitution_continues_the_ripple_in_phase():
    """A masked run is filled from a whole number of ripple periods away: on a pure ripple with
    an integer period the filled values equal the ripple itself (an independent check)."""
    from overtone_radio.protect import substitute

    n, period = 4096, 143
    ripple = np.cos(2 * np.pi * np.arange(n) / period)[None].repeat(3, 0)
    x = ripple + np.where(np.arange(n) % 1000 < 300, 5.0, 0.0)  # "sources" to hide
    protect = np.zeros((3, n), bool)
    protect[0, 1000:1300] = True
    protect[1, 0:300] = True  # no room on the left: filled from the right
    protect[1, 2000:2300] = True
    protect[2] = True  # everything protected: nothing to estimate from
    out, empty, (rows, channels) = substitute(x, protect, float(period))
    for r in (0, 1):
        np.testing.assert_allclose(out[r][protect[r]], ripple[r][protect[r]], atol=1e-12)
        np.testing.assert_array_equal(out[r][~protect[r]], x[r][~protect[r]])
    assert list(empty) == [False, False, True]
    written = np.zeros_like(protect)
    written[rows, channels] = True
    np.testing.assert_array_equal(written, protect & ~empty[:, None])


def test_frequency_only_mask_equals_the_same_mask_per_spectrum(small):
    """A (frequency,) source_mask takes a vectorised path; it must match the per-spectrum path,
    NaN rows included."""
    ds = small.compute().drop_vars("source_mask")
    ds["spectrum"].values[2, 50:60] = np.nan
    mask = np.zeros(ds.sizes["frequency"], bool)
    mask[1000:1200] = True
    one = FFTStandingWave()(ds.assign(source_mask=("frequency", mask)))
    full = np.broadcast_to(mask, ds["spectrum"].shape).copy()
    every = FFTStandingWave()(ds.assign(source_mask=(("time", "frequency"), full)))
    np.testing.assert_array_equal(one["spectrum"].values, every["spectrum"].values)
    lazy = FFTStandingWave()(ds.chunk({"time": 8}).assign(source_mask=("frequency", mask)))
    np.testing.assert_allclose(lazy["spectrum"].values, one["spectrum"].values, atol=1e-5)


def test_a_band_too_narrow_for_the_windows_is_a_config_error_before_compute(small):
    from overtone import ConfigError

    narrow = small.isel(frequency=slice(0, 64))  # 0.49 MHz: delay bins of 2 us
    with pytest.raises(ConfigError, match="holds no delay bin"):
        FFTStandingWave(windows_us=[[0.88, 0.97]])(narrow)
    # found windows (the default) that this band cannot hold are dropped: nothing removed
    out = FFTStandingWave(edges=False, lines=False)(narrow).compute()
    np.testing.assert_array_equal(out["spectrum"].values, narrow["spectrum"].values)
    assert (out["sw_bins"].values == 0).all()


def test_a_non_positive_detect_threshold_is_a_config_error():
    from overtone import ConfigError

    with pytest.raises(ConfigError, match="detect = 0; give a positive threshold in sigma"):
        FFTStandingWave(detect=0)
    with pytest.raises(ConfigError, match="detect protects what it finds, so it needs protect = true"):
        FFTStandingWave(detect=3, protect=False)


def test_workers_read_like_scipy_and_no_spectra_is_no_work():
    """workers = -1 means every core (as in scipy.fft); an empty batch returns empty arrays."""
    from overtone_radio.fftfilter import remove_standing_waves

    x = np.random.default_rng(2).normal(size=(70, 4096)).astype(np.float32)
    default, _ = remove_standing_waves(x, None, step_mhz=0.0076)
    for workers in (-1, 1, 3):
        np.testing.assert_array_equal(remove_standing_waves(x, None, step_mhz=0.0076, workers=workers)[0], default)
    np.testing.assert_array_equal(remove_standing_waves(x[:5], None, step_mhz=0.0076, workers=-1)[0], default[:5])
    out, counts = remove_standing_waves(x[:0], None, step_mhz=0.0076)
    assert out.shape == (0, 4096) and counts.shape == (0,)


def test_vectorised_substitution_equals_the_per_row_map():
    """The all-rows-at-once substitution equals substitution_map applied row by row (the
    plain reference), on random masks with runs at both edges, runs that feed each other,
    runs too long for either side, and a fully masked row."""
    from overtone_radio.protect import substitute, substitution_map

    rng = np.random.default_rng(3)
    rows, n, period = 40, 2000, 37.3
    x = rng.normal(size=(rows, n))
    protect = np.zeros((rows, n), bool)
    for r in range(rows - 1):
        for _ in range(rng.integers(0, 6)):
            a = int(rng.integers(0, n))
            protect[r, a:a + int(rng.integers(1, 120))] = True
    protect[0, :30] = protect[1, n - 30:] = True  # edge runs
    protect[2, 500:560] = protect[2, 580:600] = True  # the second run's source holds the first
    protect[3, 300:1400] = True  # fits on neither side: median fill
    protect[rows - 1] = True
    out, empty, (run_rows, channels) = substitute(x, protect, period)
    for r in range(rows - 1):
        expected = x[r].copy()
        pos, src = substitution_map(protect[r], period)
        expected[pos] = x[r][np.maximum(src, 0)]
        clean = np.ones(n, bool)
        clean[pos] = False
        expected[pos[src < 0]] = np.median(x[r][clean])
        np.testing.assert_array_equal(out[r], expected, err_msg=f"row {r}")
    assert empty.tolist() == [False] * (rows - 1) + [True]
    assert not out[rows - 1].any()
    written = np.zeros_like(protect)
    written[run_rows, channels] = True
    np.testing.assert_array_equal(written, protect & ~empty[:, None])


def test_inverse_transform_into_the_output_equals_scipy_irfft(monkeypatch):
    """The filter writes its inverse FFT straight into the output with numpy's public
    ``irfft(..., out=)``; the scipy.fft.irfft path (used with numpy < 2) gives the same
    result, float32 and float64."""
    import scipy.fft as sfft
    from overtone_radio import fftfilter

    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        x = rng.normal(size=(5, 1000)).astype(dtype)
        spec = sfft.rfft(x, axis=1)
        direct = np.empty_like(x)
        fftfilter.irfft_into(spec, direct, 1)
        atol = 1e-12 if dtype == np.float64 else 1e-5
        np.testing.assert_allclose(direct, sfft.irfft(spec, n=1000, axis=1), rtol=0, atol=atol)
        x[:, 100:200] += 3 * np.sin(np.arange(100) / 7.0)
        kwargs = dict(step_mhz=0.5, reference_us=(0.2, 0.9), windows_us=[(0.05, 0.08)])
        with_binding = fftfilter.remove_standing_waves(x, x > 2.5, **kwargs)
        monkeypatch.setattr(fftfilter, "_IRFFT_OUT", False)
        public = fftfilter.remove_standing_waves(x, x > 2.5, **kwargs)
        monkeypatch.undo()
        np.testing.assert_allclose(with_binding[0], public[0], rtol=0, atol=atol)
        np.testing.assert_array_equal(with_binding[1], public[1])


def test_substitution_never_copies_protected_values():
    """Runs that would fill each other (each one's stretch at one period holds the other)
    move on to the next whole period instead; a NaN run near the left edge whose right-hand
    stretch is a protected source leaves only its own channels NaN."""
    from overtone_radio.fftfilter import remove_standing_waves
    from overtone_radio.protect import substitution_map

    mask = np.zeros(100, bool)
    mask[5:8] = mask[15:18] = True
    pos, src = substitution_map(mask, 10.0)
    assert not mask[src].any() and (src >= 0).all()
    assert set(((src - pos) % 10).tolist()) == {0}  # whole periods: the ripple stays in phase

    rng = np.random.default_rng(0)
    n, step = 4096, 0.0076
    x = (rng.normal(size=(2, n)) + 0.5 * np.sin(2 * np.pi * np.arange(n) * step / 1.09)).astype(np.float32)
    x[0, 10:20] = np.nan
    period_ch = 2 / (0.88 + 0.97) / step
    shift = int(round(np.ceil(10 / period_ch) * period_ch))
    protect = np.zeros((2, n), bool)
    protect[0, 10 + shift:20 + shift] = True
    out, _ = remove_standing_waves(x, protect, step_mhz=step)
    assert np.isnan(out[0]).sum() == 10 and np.isnan(out[0, 10:20]).all()
    assert np.isfinite(out[1]).all()
