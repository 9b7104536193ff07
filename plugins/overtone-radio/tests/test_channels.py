"""flag-narrow-rfi, polynomial-baseline and smooth against independent NumPy references."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from numpy.lib.stride_tricks import sliding_window_view
from overtone import ConfigError
from overtone_radio.channels import NarrowRFIFlagger, PolynomialBaseline, Smooth


def spectra(n_time: int = 4, n: int = 2048, seed: int = 0) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    f = 1400.0 + 0.01 * np.arange(n)
    x = 20 + 0.001 * (f - 1400) ** 2 + rng.normal(0, 0.1, (n_time, n))
    return xr.Dataset({"spectrum": (("time", "frequency"), x.astype(np.float32), {"units": "K"})},
                      coords={"frequency": ("frequency", f, {"units": "MHz"})})


def reference_flags(x: np.ndarray, window: int, nsigma: float) -> np.ndarray:
    """The same rule written independently: running median by explicit windows (mirror
    padding as scipy's 'mirror'), MAD from its definition."""
    h = window // 2
    padded = np.concatenate([x[1:h + 1][::-1], x, x[-h - 1:-1][::-1]])
    med = np.median(sliding_window_view(padded, window), axis=1)
    r = x - med
    sigma = 1.482602218505602 * np.median(np.abs(r - np.median(r)))
    return np.abs(r) > nsigma * sigma


def test_narrow_rfi_flags_match_the_reference_and_find_the_spikes():
    ds = spectra()
    x = ds["spectrum"].values.astype(np.float64)
    spikes = [100, 700, 701, 1500]
    x[:, spikes] += 3.0
    ds["spectrum"].values[:] = x
    out = NarrowRFIFlagger(window_mhz=0.21, nsigma=6.0)(ds)
    for row in range(x.shape[0]):
        np.testing.assert_array_equal(out["flag"].values[row], reference_flags(x[row], 21, 6.0))
        assert set(np.flatnonzero(out["flag"].values[row])) == set(spikes)
    grown = NarrowRFIFlagger(window_mhz=0.21, grow_mhz=0.02)(ds)
    assert grown["flag"].values[0, 98:103].all() and not grown["flag"].values[0, 104]
    lazy = NarrowRFIFlagger(window_mhz=0.21)(ds.chunk({"time": 1})).compute()
    np.testing.assert_array_equal(lazy["flag"].values, out["flag"].values)


def test_polynomial_baseline_matches_numpy_chebyshev_fit_in_float64():
    ds = spectra().astype(np.float64)
    f = ds["frequency"].values
    ds["spectrum"].values[:, 900:1000] += 2.0  # a line, excluded from the fit
    ds["flag"] = (("time", "frequency"), np.zeros(ds["spectrum"].shape, bool))
    ds["flag"].values[1, 50:60] = True  # a flag in one spectrum only
    out = PolynomialBaseline(order=4, exclude_mhz=[[1408.9, 1410.0]])(ds)
    for row in range(ds.sizes["time"]):
        use = ~((f >= 1408.9) & (f <= 1410.0)) & ~ds["flag"].values[row]
        fit = np.polynomial.Chebyshev.fit(f[use], ds["spectrum"].values[row][use], 4,
                                          domain=[f.min(), f.max()])
        expected = ds["spectrum"].values[row] - fit(f)
        np.testing.assert_allclose(out["spectrum"].values[row], expected, rtol=0, atol=1e-9)
    lazy = PolynomialBaseline(order=4, exclude_mhz=[[1408.9, 1410.0]])(ds.chunk({"time": 2}))
    np.testing.assert_allclose(lazy["spectrum"].values, out["spectrum"].values, atol=1e-9)


@pytest.mark.parametrize("kernel,channels,decimate", [("boxcar", 5, False), ("boxcar", 4, True),
                                                      ("hanning", 3, False), ("hanning", 3, True)])
def test_smoothing_matches_numpy_convolution(kernel, channels, decimate):
    ds = spectra(n=1001).astype(np.float64)
    x = ds["spectrum"].values
    f = ds["frequency"].values
    w = np.ones(channels) / channels if kernel == "boxcar" else np.array([0.25, 0.5, 0.25])
    full = np.stack([np.convolve(row, w, mode="valid") for row in x])  # centred where defined
    centres = np.convolve(f, w, mode="valid")
    out = Smooth(kernel=kernel, channels=channels, decimate=decimate)(ds)
    got = out["spectrum"].values
    if not decimate:  # same grid; NaN where the window leaves the band
        h = (len(w) - 1) // 2
        np.testing.assert_allclose(got[:, h:h + full.shape[1]], full, rtol=0, atol=1e-12)
        assert np.isnan(got[:, :h]).all()
    else:
        step = channels if kernel == "boxcar" else 2
        start = 0 if kernel == "boxcar" else 0
        np.testing.assert_allclose(got, full[:, start::step][:, :got.shape[1]], rtol=0, atol=1e-12)
        np.testing.assert_allclose(out["frequency"].values,
                                   centres[start::step][:got.shape[1]], rtol=0, atol=1e-9)
        assert got.shape[1] == (1001 // channels if kernel == "boxcar" else 500)


def test_bad_settings_are_one_line_config_errors():
    with pytest.raises(ConfigError, match="exclude_mhz"):
        PolynomialBaseline(exclude_mhz=[1397, 1402])
    with pytest.raises(ConfigError, match="kernel"):
        Smooth(kernel="gauss")
    with pytest.raises(ConfigError, match="order"):
        PolynomialBaseline(order=-1)
