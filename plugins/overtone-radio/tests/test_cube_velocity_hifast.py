"""FITS cubes (the real Mopra HCN cube and round trips), velocity conventions against the
formulas by hand, the lazy HiFAST reader, and the dysh converter against GBTIDL."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from astropy.io import fits
from overtone import DatasetError
from overtone.io import open_dataset
from overtone_radio.cube import write_cube
from overtone_radio.readers import open_fits, open_hifast
from overtone_radio.velocity import doppler_velocity, frequency_from_velocity, parse_veldef

DATA = Path(__file__).resolve().parents[3] / "data" / "radio"
HCN = DATA / "cubes" / "region5_hcn_crop.fits"
C_KMS = 299792.458


def test_hcn_cube_values_axes_and_celestial_coordinates():
    ds = open_fits(HCN, chunks={"y": 10})
    with fits.open(HCN) as hdul:
        ref, header = hdul[0].data.astype(np.float32), hdul[0].header
    assert ds["spectrum"].dims == ("y", "x", "frequency") and ds["spectrum"].chunks[0][0] == 10
    np.testing.assert_array_equal(ds["spectrum"].values, np.moveaxis(ref, 0, -1))  # NaNs too
    assert ds["spectrum"].attrs["units"] == "K"
    # VRAD axis in m/s: CRVAL3 + (k + 1 - CRPIX3) CDELT3; frequency by the radio convention
    v = (header["CRVAL3"] + (np.arange(352) + 1 - header["CRPIX3"]) * header["CDELT3"]) / 1e3
    np.testing.assert_allclose(ds["velocity"].values, v, rtol=0, atol=1e-9)
    assert ds["velocity"].attrs["doppler_convention"] == "radio"
    assert ds["velocity"].attrs["frame"] == "LSRK"
    np.testing.assert_allclose(ds["frequency"].values, header["RESTFRQ"] * (1 - v / C_KMS) / 1e6,
                               rtol=1e-12)
    # the reference pixel (CRPIX1, CRPIX2) sits at (CRVAL1, CRVAL2)
    y, x = int(header["CRPIX2"]) - 1, int(header["CRPIX1"]) - 1
    assert float(ds["glon"][y, x]) == pytest.approx(header["CRVAL1"], abs=1e-9)
    assert float(ds["glat"][y, x]) == pytest.approx(header["CRVAL2"], abs=1e-9)
    assert float(ds["glon"][y, x + 1]) < float(ds["glon"][y, x])  # CDELT1 < 0


def test_cube_round_trip_keeps_values_and_wcs(tmp_path):
    ds = open_fits(HCN)
    out = write_cube(ds, tmp_path / "copy.fits")
    back = open_fits(out)
    np.testing.assert_array_equal(back["spectrum"].values, ds["spectrum"].values)
    for name in ("frequency", "velocity", "glon", "glat"):
        np.testing.assert_allclose(back[name].values, ds[name].values, rtol=1e-12)
    with pytest.raises(DatasetError, match="exists; pass overwrite=True"):
        write_cube(ds, out)
    write_cube(ds * 2, out, overwrite=True)
    np.testing.assert_array_equal(open_fits(out)["spectrum"].values, 2 * ds["spectrum"].values)


@pytest.mark.parametrize("dims", [("y", "x", "frequency"), ("frequency",), ("y", "frequency")])
def test_new_cube_or_spectrum_without_a_wcs_round_trips(tmp_path, dims):
    rng = np.random.default_rng(1)
    sizes = {"y": 3, "x": 4, "frequency": 64}
    freq = 1400.0 + 0.01 * np.arange(64)
    data = rng.normal(size=[sizes[d] for d in dims]).astype(np.float32)
    ds = xr.Dataset({"spectrum": (dims, data, {"units": "Jy"})},
                    coords={"frequency": ("frequency", freq, {"units": "MHz"})},
                    attrs={"rest_frequency_hz": 1420.405751e6})
    path = write_cube(ds, tmp_path / "new.fits")
    back = open_fits(path)
    assert back["spectrum"].dims == dims and back["spectrum"].attrs["units"] == "Jy"
    np.testing.assert_array_equal(back["spectrum"].values, data)
    np.testing.assert_allclose(back["frequency"].values, freq, rtol=1e-12)
    np.testing.assert_allclose(back["velocity"].values, C_KMS * (1 - freq / 1420.405751), rtol=1e-9)
    uneven = ds.assign_coords(frequency=freq ** 1.01)
    with pytest.raises(DatasetError, match="not evenly spaced"):
        write_cube(uneven, tmp_path / "uneven.fits")


def test_optical_velocity_cube_gives_frequencies_by_the_optical_formula(tmp_path):
    header = fits.Header()
    header["CTYPE1"], header["CRVAL1"], header["CDELT1"], header["CRPIX1"] = "RA---SIN", 10.0, -1e-3, 1
    header["CTYPE2"], header["CRVAL2"], header["CDELT2"], header["CRPIX2"] = "DEC--SIN", 20.0, 1e-3, 1
    header["CTYPE3"], header["CRVAL3"], header["CDELT3"], header["CRPIX3"] = "VOPT", 1000e3, 5e3, 1
    header["CUNIT3"], header["RESTFRQ"], header["BUNIT"] = "m/s", 1420.405751e6, "Jy/beam"
    fits.PrimaryHDU(np.ones((8, 2, 3), np.float32), header).writeto(tmp_path / "vopt.fits")
    ds = open_fits(tmp_path / "vopt.fits")
    v = 1000.0 + 5.0 * np.arange(8)
    np.testing.assert_allclose(ds["velocity"].values, v)
    np.testing.assert_allclose(ds["frequency"].values, 1420.405751 / (1 + v / C_KMS), rtol=1e-12)
    assert set(ds.coords) >= {"ra", "dec"}


def test_cube_goes_through_overtone_process(tmp_path):
    out = tmp_path / "clean.nc"
    run = subprocess.run([sys.executable, "-m", "overtone", "process", str(HCN), "--chunk-dim",
                          "y", "--chunks", "16", "--with", "fft-standing-wave", "--param",
                          "fft-standing-wave.protect_ranges_mhz=[]", "-o", str(out), "-q"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    with open_dataset(out) as ds:
        assert ds["spectrum"].dims == ("y", "x", "frequency") and "sw_bins" in ds
        assert ds.sizes == {"y": 37, "x": 47, "frequency": 352}


@pytest.mark.parametrize("convention,formula", [
    ("radio", lambda f, f0: C_KMS * (f0 - f) / f0),
    ("optical", lambda f, f0: C_KMS * (f0 - f) / f),
    ("relativistic", lambda f, f0: C_KMS * (f0 ** 2 - f ** 2) / (f0 ** 2 + f ** 2)),
])
def test_doppler_conventions_match_the_formulas(convention, formula):
    f0 = 1420.405751e6
    f = np.array([1.30e9, 1.40e9, 1.42e9, 1.4204e9, 1.45e9])
    v = doppler_velocity(f, f0, convention)
    np.testing.assert_allclose(v, formula(f, f0), rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(frequency_from_velocity(v, f0, convention), f, rtol=1e-12)


def test_veldef_parsing():
    assert parse_veldef("OPTI-LSR") == ("optical", "lsrk")
    assert parse_veldef("RADI-HEL") == ("radio", "hcrs")
    assert parse_veldef("VELO-BAR") == ("relativistic", "icrs")
    assert parse_veldef("RADI-OBS") == ("radio", None)
    with pytest.raises(DatasetError, match="VELDEF 'FOO-LSR'"):
        parse_veldef("FOO-LSR")


def _hifast_file(tmp_path: Path, values: np.ndarray, freq: np.ndarray, flags: np.ndarray) -> Path:
    """A HiFAST file whose S/T and S/is_rfi are stored in external raw files, so that a test can
    take them away and prove the reader does not read them while opening."""
    import h5py

    path = tmp_path / "obs-M01_W_0001.hdf5"
    with h5py.File(path, "w") as h5:
        g = h5.create_group("S")
        raw_t, raw_f = tmp_path / "T.raw", tmp_path / "is_rfi.raw"
        values.astype("<f4").tofile(raw_t)
        flags.astype("u1").tofile(raw_f)
        g.create_dataset("T", shape=values.shape, dtype="<f4",
                         external=[(str(raw_t), 0, values.size * 4)])
        g.create_dataset("is_rfi", shape=flags.shape, dtype="u1",
                         external=[(str(raw_f), 0, flags.size)])
        g["freq"] = freq
        g["mjd"] = 60000.0 + np.arange(values.shape[1]) / 86400
    return path


def test_hifast_reader_reads_no_spectra_until_computed(tmp_path):
    rng = np.random.default_rng(2)
    values = rng.normal(10, 1, (2, 12, 256)).astype(np.float32)  # (pol, time, chan)
    flags = rng.random((12, 256)) < 0.05
    path = _hifast_file(tmp_path, values, 1420 + 0.01 * np.arange(256), flags)
    hidden = {p: p.with_suffix(".hidden") for p in (tmp_path / "T.raw", tmp_path / "is_rfi.raw")}
    for p, q in hidden.items():
        p.rename(q)  # the spectra are now unreadable: an eager read fails here
    ds = open_hifast(path, chunks=5)
    assert ds["spectrum"].shape == (12, 2, 256) and ds["spectrum"].chunks[0] == (5, 5, 2)
    with pytest.raises(OSError):
        ds["spectrum"].values  # noqa: B018  (proves the data really come from the raw file)
    for p, q in hidden.items():
        q.rename(p)
    np.testing.assert_array_equal(ds["spectrum"].values, np.moveaxis(values, 0, 1))
    np.testing.assert_array_equal(ds["flag"].values, flags)
    assert ds["spectrum"].attrs["units"] == "K"
    eager = open_hifast(path)  # chunks=None: read now, plain numpy
    assert isinstance(eager["spectrum"].data, np.ndarray)


def test_dysh_getps_converted_equals_gbtidl_getps():
    """dysh calibrates U8091's ON/OFF pair (scans 263/264) from the raw file; converted, it
    equals GBTIDL's getps of the same pair (the cal file) to 1e-5 K."""
    pytest.importorskip("dysh")
    import warnings

    from dysh.fits.gbtfitsload import GBTFITSLoad
    from overtone_radio.dysh import from_dysh

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sdf = GBTFITSLoad(str(DATA / "gbt" / "AGBT04A_008_02.raw.acs.testrim.fits"))
        block = sdf.getps(scan=263, ifnum=0, plnum=0, fdnum=0)
    ds = from_dysh(block)
    gbtidl = open_fits(DATA / "gbt" / "AGBT04A_008_02.cal.acs.testtrim.fits", hdu=2,
                       object="U8091")
    assert ds["spectrum"].attrs["units"] == "K" and ds.sizes["time"] == 1
    np.testing.assert_allclose(ds["spectrum"].values, gbtidl["spectrum"].values, rtol=0, atol=1e-5)
    np.testing.assert_allclose(ds["frequency"].values, gbtidl["frequency"].values, rtol=1e-15)
    np.testing.assert_allclose(ds["velocity"].values, gbtidl["velocity"].values, atol=1e-6)
    assert ds["time"].values[0] == gbtidl["time"].values[0]
    assert ds["object"].item() == "U8091" and ds["scan"].item() == 264
    np.testing.assert_allclose(ds["tsys"].values, gbtidl["tsys"].values, rtol=1e-6)
    average = from_dysh(block.timeaverage())
    np.testing.assert_allclose(average["spectrum"].values, ds["spectrum"].values, atol=1e-5)
    with pytest.raises(DatasetError, match="cannot convert a int"):
        from_dysh(3)


def test_dysh_written_flags_are_read_as_flag(tmp_path):
    """dysh's flags, written by dysh into its FLAGS column, come back as ``flag``."""
    pytest.importorskip("dysh")
    import warnings

    from dysh.fits.gbtfitsload import GBTFITSLoad

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sdf = GBTFITSLoad(str(DATA / "gbt" / "AGBT04A_008_02.raw.acs.testrim.fits"))
        sdf.flag_channel([[100, 110]])
        sdf.apply_flags()
        sdf.write(str(tmp_path / "flagged.fits"), flags=True, overwrite=True)
    ds = open_fits(tmp_path / "flagged.fits", object="U8091", scan=[263, 264], cal="F")
    expected = np.zeros((2, 32768), bool)
    expected[:, 100:111] = True  # dysh's channel ranges include both ends
    np.testing.assert_array_equal(ds["flag"].values, expected)
    original = open_fits(DATA / "gbt" / "AGBT04A_008_02.raw.acs.testrim.fits", object="U8091",
                         scan=[263, 264], cal="F")
    np.testing.assert_array_equal(ds["spectrum"].values, original["spectrum"].values)
