"""The default pipeline on real Green Bank Telescope spectra (dysh's public test data, shipped
byte for byte in data/radio/gbt/): NGC 5291 (HI galaxy, 50 MHz, GBTIDL getps), U8091 and
U10629 (12.5 MHz, junk first channels), W3OH (OH masers, 23 MHz, getfs).

The files are read here with astropy.io.fits straight into the spectra layout (frequency
from CRVAL1/CDELT1/CRPIX1 in MHz, TSYS, EXPOSURE, TELESCOP), independent of the readers."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from overtone_radio.fftfilter import FFTStandingWave, remove_standing_waves
from overtone_radio.spectra import frequency_axis

GBT = Path(__file__).resolve().parents[3] / "data" / "radio" / "gbt"
NGC5291 = "AGBT05B_047_01.getps.acs.fits"
U_GALAXIES = "AGBT04A_008_02.cal.acs.testtrim.fits"
W3OH = "TGBT21A_504_01.cal.vegas.fits"


def gbt(name: str, hdu: int = 1, rows: list[int] | None = None) -> xr.Dataset:
    """Rows of one SDFITS table as a (time, frequency) spectra Dataset."""
    from astropy.io import fits

    with fits.open(GBT / name) as f:
        table = f[hdu].data
        rows = list(range(len(table))) if rows is None else rows
        first = table[rows[0]]
        n = first["DATA"].size
        freq = (first["CRVAL1"] + (np.arange(n) + 1 - first["CRPIX1"]) * first["CDELT1"]) / 1e6
        x = np.stack([table[r]["DATA"] for r in rows]).astype(np.float32)
        return xr.Dataset(
            {"spectrum": (("time", "frequency"), x, {"units": "K"}),
             "tsys": ("time", np.array([table[r]["TSYS"] for r in rows], float), {"units": "K"}),
             "exposure": ("time", np.array([table[r]["EXPOSURE"] for r in rows], float),
                          {"units": "s"})},
            coords={"frequency": ("frequency", freq, {"units": "MHz"})},
            attrs={"telescope": str(first["TELESCOP"]), "object": str(first["OBJECT"])})


def noise(x: np.ndarray) -> float:
    """Channel noise of the middle half of a spectrum: median |difference| / 0.954."""
    n = x.size
    return float(np.median(np.abs(np.diff(x[n // 4: 3 * n // 4]))) / 0.954)


def line_integral(ds: xr.Dataset, y: np.ndarray) -> float:
    """NGC 5291's HI integral over 1398.1-1401.4 MHz above a line fitted to 1395-1398 and
    1401.6-1404.6 MHz (line-free on either side)."""
    f = ds["frequency"].values
    line = (f > 1398.1) & (f < 1401.4)
    base = ((f > 1395) & (f < 1398.0)) | ((f > 1401.6) & (f < 1404.6))
    c = np.polyfit(f[base], y[base], 1)
    return float((y[line] - np.polyval(c, f[line])).sum())


def test_gbt_preset_comes_from_the_telescope_attribute():
    ds = gbt(NGC5291)
    f = FFTStandingWave()
    assert ds.attrs["telescope"] == "NRAO_GBT" and f.preset(ds) == "gbt"
    out = f(ds)
    assert "[0.4, 0.46], [0.58, 0.66]" in out["spectrum"].attrs["sw_windows_us"]
    # explicit windows win over the preset
    assert FFTStandingWave(windows_us=[[0.7, 0.8]])(ds)["spectrum"].attrs["sw_windows_us"] \
        == "[[0.7, 0.8]]"


@pytest.mark.parametrize("row", [0, 1, 2])
def test_junk_first_channels_are_flagged_and_no_ramp_is_subtracted(row):
    """U8091 and U10629 (GBTIDL, 381 Hz channels): the first ~1,400-1,600 channels are up to
    170x noisier than the band. They are flagged (flag), and what the filter removes stays
    below the channel noise everywhere (the old straight line through the first and last 16
    channels produced a 53-sigma ramp on U10629)."""
    ds = gbt(U_GALAXIES, hdu=2, rows=[row])
    x = ds["spectrum"].values[0].astype(np.float64)
    out = FFTStandingWave()(ds)
    flag = out["flag"].values
    assert 1000 < flag[:4000].sum() < 4000, flag[:4000].sum()
    assert flag[:1000].all()
    assert flag[8000:-200].sum() == 0
    removed = x - out["spectrum"].values[0]
    assert np.abs(removed).max() < 1.0 * noise(x), np.abs(removed).max() / noise(x)


def test_an_implausible_model_is_refused_with_a_warning():
    """The old edge line (means of 16 channels) on U10629 makes the filter subtract a ramp of
    53x the noise; the plausibility check refuses that model, says why, and marks sw_bins
    with -1; without the check the ramp is subtracted."""
    ds = gbt(U_GALAXIES, hdu=2, rows=[1])
    x = ds["spectrum"].values
    axis = frequency_axis(ds)
    kwargs = dict(step_mhz=axis.step_mhz, windows_us=[(0.40, 0.46), (0.58, 0.66)], keep_bins=1)
    ramp, nb = remove_standing_waves(x, None, **kwargs)
    assert nb[0] > 0 and np.abs(x - ramp).max() > 30 * noise(x[0].astype(float))
    with pytest.warns(RuntimeWarning, match="makes the band rougher"):
        kept, nb = remove_standing_waves(x, None, refuse_ratio=3.0, **kwargs)
    assert nb[0] == -1
    np.testing.assert_array_equal(kept, x)


def test_unmasked_hi_galaxy_keeps_its_integral():
    """NGC 5291, nobody masked: the default filter (lines found in the guide spectrum and
    protected) keeps the HI integral within 2%; without line protection it changes by more."""
    ds = gbt(NGC5291)
    x = ds["spectrum"].values[0].astype(np.float64)
    before = line_integral(ds, x)
    out = FFTStandingWave()(ds)
    after = line_integral(ds, out["spectrum"].values[0].astype(np.float64))
    assert abs(after / before - 1) < 0.02, after / before - 1
    bare = FFTStandingWave(lines=False)(ds)
    changed = line_integral(ds, bare["spectrum"].values[0].astype(np.float64))
    assert abs(changed / before - 1) > 0.02, changed / before - 1
    assert out["sw_protected"].sel(frequency=slice(1401.3, 1400.1)).values.all()


def test_injected_gaussian_in_a_real_rippled_spectrum_keeps_its_flux():
    """NGC 5291's real spectrum with a 0.1 K standing wave at 0.43 us added (the GBT delay)
    and a 0.3 K, 0.5 MHz FWHM Gaussian injected at 1390 MHz: the default filter removes the
    ripple (its RMS falls from 0.071 K to under 0.02 K) and keeps the Gaussian's flux within
    3% over +-0.75 MHz (flux kept = sum(output with the line - output without) / sum
    injected; over the whole band the sum is kept whatever happens, the DC bin is never
    removed). Without line protection the filter takes about 9% of it. The line is found in
    the second look, on the guide spectrum with the ripple taken out."""
    ds = gbt(NGC5291)
    f = ds["frequency"].values
    ripple = 0.1 * np.cos(2 * np.pi * 0.43 * f + 0.7)
    g = 0.3 * np.exp(-0.5 * ((f - 1390.0) / (0.5 / 2.3548)) ** 2)
    sel = np.abs(f - 1390.0) < 0.75
    rippled = ds.copy(data={"spectrum": (ds["spectrum"].values + ripple).astype(np.float32),
                            "tsys": ds["tsys"].values, "exposure": ds["exposure"].values})
    injected = rippled.copy(data={"spectrum": (rippled["spectrum"].values + g).astype(np.float32),
                                  "tsys": ds["tsys"].values, "exposure": ds["exposure"].values})
    errors = {}
    for lines in (True, False):
        filt = FFTStandingWave(lines=lines)
        plain, with_line = filt(rippled), filt(injected)
        assert plain["sw_bins"].values[0] > 0 and with_line["sw_bins"].values[0] > 0
        n = f.size
        left = plain["spectrum"].values[0] - ds["spectrum"].values[0]
        assert left[n // 4: 3 * n // 4].std() < 0.02
        kept = (with_line["spectrum"].values[0].astype(np.float64)
                - plain["spectrum"].values[0])[sel]
        errors[lines] = kept.sum() / g[sel].sum() - 1
    assert abs(errors[True]) < 0.03, errors
    assert abs(errors[False]) > 0.05, errors


def test_detect_works_on_one_spectrum_in_memory_and_on_dask():
    """detect (the per-spectrum guide image) on one spectrum: no dask overlap error, the
    same mask in memory and lazily, NGC 5291's line found."""
    ds = gbt(NGC5291)
    eager = FFTStandingWave(detect=3.0)(ds)
    lazy = FFTStandingWave(detect=3.0)(ds.chunk({"time": 1})).compute()
    np.testing.assert_allclose(lazy["spectrum"].values, eager["spectrum"].values, atol=1e-6)
    from overtone_radio.detect import detect_mask

    mask = detect_mask(ds["spectrum"], None, 3.0, step_mhz=frequency_axis(ds).width_mhz)
    assert mask.sel(frequency=slice(1401.0, 1400.7)).values.any()
    for n in (2, 3, 6):  # fewer spectra than the guide image's reach along time
        many = xr.concat([ds] * n, "time").chunk({"time": 1})
        got = detect_mask(many["spectrum"], None, 3.0, step_mhz=frequency_axis(ds).width_mhz)
        assert got.shape == many["spectrum"].shape and bool(got.any().compute())


def test_no_warning_on_the_real_files_with_defaults():
    for name, hdu in ((NGC5291, 1), (U_GALAXIES, 2), (W3OH, 1)):
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            FFTStandingWave()(gbt(name, hdu)).compute()


def test_an_oh_maser_is_not_a_comb():
    """W3OH (getfs, 715 Hz channels): the maser lines have many local maxima each; they are
    one tooth each, so harmonic-rfi reports no comb and flags nothing (it used to report an
    11-tooth, 18.8 MHz "comb" inside a 23 MHz band), in either polarization and their mean."""
    from overtone_radio.rfi import HarmonicRFI, find_peaks

    for rows in ([0], [1], None):
        out = HarmonicRFI()(gbt(W3OH, rows=rows))
        assert out.sizes["rfi"] == 0 and not out["rfi_mask"].values.any()
    # the peaks are distinct features: no two within one run above half the threshold
    resid = HarmonicRFI().mean_residual(gbt(W3OH), "spectrum", frequency_axis(gbt(W3OH)).width_mhz)
    peaks = find_peaks(resid, 5.0, 0.0)
    assert 0 < peaks.size < 40
    assert np.diff(peaks).min() > 3
