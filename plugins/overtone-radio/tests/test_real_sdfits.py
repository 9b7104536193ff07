"""The SDFITS reader on real GBT files (data/radio/gbt, see its README), checked against the
same files read directly with astropy.io.fits."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.time import Time
from overtone import ConfigError, DatasetError
from overtone.io import open_dataset
from overtone_radio.readers import open_fits

GBT = Path(__file__).resolve().parents[3] / "data" / "radio" / "gbt"
NGC5291 = GBT / "AGBT05B_047_01.getps.acs.fits"
CAL = GBT / "AGBT04A_008_02.cal.acs.testtrim.fits"
RAW = GBT / "AGBT04A_008_02.raw.acs.testrim.fits"
W3OH = GBT / "TGBT21A_504_01.cal.vegas.fits"
ARGUS = GBT / "AGBT22A_325_15.raw.vegas.A.fits"
C_KMS = 299792.458


def table(path: Path, hdu: int = 1) -> fits.FITS_rec:
    with fits.open(path) as hdul:
        return hdul[hdu].data.copy()


def axis_hz(row: fits.FITS_record, nchan: int) -> np.ndarray:
    """The SDFITS frequency axis written out: CRVAL1 + (i + 1 - CRPIX1) CDELT1."""
    return row["CRVAL1"] + (np.arange(nchan) + 1 - row["CRPIX1"]) * row["CDELT1"]


def test_gbtidl_ngc5291_spectrum_units_time_and_metadata():
    ds = open_fits(NGC5291, chunks="auto")
    ref = table(NGC5291)
    row = ref[0]
    assert ds["spectrum"].chunks is not None  # still lazy
    np.testing.assert_array_equal(ds["spectrum"].values, ref["DATA"].astype(np.float32))
    assert ds["spectrum"].attrs["units"] == "K" and ds["spectrum"].attrs["brightness_scale"] == "Ta"
    np.testing.assert_allclose(ds["frequency"].values * 1e6, axis_hz(row, 32768), rtol=0, atol=1e-3)
    assert ds["time"].values[0] == np.datetime64("2005-06-27T02:05:58", "ns")
    assert float(ds["mjd"][0]) == pytest.approx(Time(row["DATE-OBS"], scale="utc").mjd, abs=1e-9)
    assert ds["object"].item() == "NGC5291" and ds["scan"].item() == 51
    assert float(ds["tsys"][0]) == pytest.approx(row["TSYS"]) and ds["tsys"].attrs["units"] == "K"
    assert float(ds["exposure"][0]) == pytest.approx(row["EXPOSURE"])
    assert float(ds["restfreq"][0]) == pytest.approx(row["RESTFREQ"] / 1e6)
    assert ds["veldef"].item() == "OPTI-LSR" and ds.attrs["telescope"] == "NRAO_GBT"
    assert float(ds["ra"][0]) == pytest.approx(row["CRVAL2"])
    assert float(ds["dec"][0]) == pytest.approx(row["CRVAL3"])
    assert ds.attrs["polarization"] == "YY"  # CRVAL4 = -6


def test_velocity_is_optical_in_the_lsr_frame_as_gbt_computes_it():
    """VELDEF OPTI-LSR on a topocentric axis: astropy's LSR correction against GBT's own VFRAME
    (the observer's velocity relative to the frame, m/s), and the optical formula by hand."""
    ds = open_fits(NGC5291)
    row = table(NGC5291)[0]
    f_lsr = axis_hz(row, 32768) * (1 + row["VFRAME"] / 1e3 / C_KMS)
    v_optical = C_KMS * (row["RESTFREQ"] / f_lsr - 1)
    assert ds["velocity"].attrs["doppler_convention"] == "optical"
    assert ds["velocity"].attrs["frame"] == "LSR"
    np.testing.assert_allclose(ds["velocity"].values, v_optical, rtol=0, atol=0.01)  # km/s
    radio = open_fits(NGC5291, velocity="radio")
    np.testing.assert_allclose(radio["velocity"].values, C_KMS * (1 - f_lsr / row["RESTFREQ"]),
                               rtol=0, atol=0.01)
    assert "velocity" not in open_fits(NGC5291, velocity="none").coords


def test_heliocentric_velocity_of_a_b1950_target_matches_vframe():
    """AGBT04A (2004): OPTI-HEL, target in FK4 B1950; astropy's heliocentric correction agrees
    with the VFRAME GBT wrote to 0.01 km/s."""
    ds = open_fits(CAL, hdu=2, object="U8091")
    row = table(CAL, 2)[0]
    assert row["RADESYS"].strip() == "FK4" and row["EQUINOX"] == 1950.0
    f_hel = axis_hz(row, 32768) * (1 + row["VFRAME"] / 1e3 / C_KMS)
    np.testing.assert_allclose(ds["velocity"].values, C_KMS * (row["RESTFREQ"] / f_hel - 1),
                               rtol=0, atol=0.01)


@pytest.mark.parametrize("selection", [
    {"scan": [263, 264], "mix_states": True}, {"scan": [263, 264], "cal": False},
    {"scan": 263, "cal": "T"}, {"hdu": 1, "cal": "F"}, {"hdu": 1, "scan": [220, 221], "cal": True},
    {"object": "U10629"},
])
def test_row_selection_counts_and_values_match_astropy(selection):
    ds = open_fits(RAW, chunks={"time": 3}, **selection)
    hdus = [selection["hdu"]] if "hdu" in selection else [1, 2]
    expected = []
    for h in hdus:
        data = table(RAW, h)
        keep = np.ones(len(data), bool)
        if "scan" in selection:
            keep &= np.isin(data["SCAN"], np.atleast_1d(selection["scan"]))
        if "cal" in selection:
            keep &= data["CAL"] == ("T" if selection["cal"] in (True, "T") else "F")
        if "object" in selection:
            keep &= data["OBJECT"] == selection["object"]
        expected.extend(data["DATA"][keep])
    assert ds.sizes["time"] == len(expected)
    np.testing.assert_array_equal(ds["spectrum"].values, np.array(expected, np.float32))
    assert ds["spectrum"].attrs["units"] == "counts"  # raw ACS rows: TUNIT7 'Counts'


def test_sub_channel_doppler_shifts_join_and_larger_ones_are_refused():
    """U8091's ON and OFF scans (263, 264) were Doppler-tracked 41 Hz apart: 0.107 of a 381 Hz
    channel. Joined as they are by default (the offset kept), refused at a tolerance of 0.05
    channel, and interpolated onto the first row's axis with align='regrid'."""
    ds = open_fits(RAW, scan=[263, 264], cal=False)
    data = table(RAW, 2)
    rows = data[np.isin(data["SCAN"], [263, 264]) & (data["CAL"] == "F")]
    shift = (rows["CRVAL1"][1] - rows["CRVAL1"][0]) / rows["CDELT1"][0]
    assert shift == pytest.approx(-0.1075, abs=1e-3)
    np.testing.assert_allclose(ds["channel_offset"].values, [0.0, shift])
    np.testing.assert_allclose(ds["frequency"].values * 1e6, axis_hz(rows[0], 32768), atol=1e-3)
    with pytest.raises(DatasetError, match="2 setups"):
        open_fits(RAW, scan=[263, 264], cal=False, max_shift_channels=0.05)
    regrid = open_fits(RAW, scan=[263, 264], cal=False, align="regrid")
    f0 = axis_hz(rows[0], 32768)
    f1 = axis_hz(rows[1], 32768)
    order0, order1 = np.argsort(f0), np.argsort(f1)  # CDELT1 > 0 here, but do not assume it
    expect = np.interp(f0[order0], f1[order1], rows["DATA"][1][order1].astype(np.float64),
                       left=np.nan, right=np.nan)[np.argsort(order0)]
    np.testing.assert_allclose(regrid["spectrum"].values[1], expect, rtol=1e-6, atol=1e-3)
    np.testing.assert_array_equal(regrid["spectrum"].values[0], rows["DATA"][0])


def _suggested(message: str) -> dict:
    from overtone.config import parse_assignment

    hint = message.split("e.g. ", 1)[1]
    return dict(parse_assignment(text, "--read") for text in
                re.findall(r"--read (\S+)", " ".join(shlex.split(hint))))


@pytest.mark.parametrize("path,kwargs,setups", [
    (CAL, {}, 3), (RAW, {}, 9), (RAW, {"object": "U8091"}, 4), (ARGUS, {}, 6),
    (ARGUS, {"fdnum": 10}, 3), (RAW, {"scan": [263, 264]}, 2),
])
def test_different_setups_are_refused_with_a_selection_that_works(path, kwargs, setups):
    with pytest.raises(DatasetError) as info:
        open_fits(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message and f"{setups} setups" in message and "--read " in message
    chosen = {**kwargs, **_suggested(message)}
    ds = open_fits(path, **chosen)  # the suggested selection opens
    assert ds.sizes["time"] >= 1 and len(set(ds["object"].values.tolist())) == 1


def test_noise_diode_states_are_not_mixed_silently():
    with pytest.raises(DatasetError, match=r"cal T sig T .* cal F sig T .* --read cal=T"):
        open_fits(RAW, scan=[263, 264])
    mixed = open_fits(RAW, scan=[263, 264], mix_states=True)
    np.testing.assert_array_equal(mixed["cal"].values, [True, False, True, False])
    assert mixed["sig"].values.all()


def test_argus_vane_sky_and_source_rows_never_mix():
    with pytest.raises(DatasetError, match="VANE"):
        open_fits(ARGUS, fdnum=10)
    data = table(ARGUS)
    for obj, count in (("VANE", 2), ("SKY", 2), ("1-631680", 12)):
        ds = open_fits(ARGUS, fdnum=10, object=obj)
        keep = (data["FDNUM"] == 10) & (data["OBJECT"] == obj)
        assert ds.sizes["time"] == keep.sum() == count
        np.testing.assert_array_equal(ds["spectrum"].values, data["DATA"][keep])
        expect = np.array([np.datetime64(d, "ns") for d in data["DATE-OBS"][keep]])
        np.testing.assert_array_equal(ds["time"].values, expect)
        assert (ds["object"].values == obj).all()


def test_w3oh_polarizations_from_crval4():
    ds = open_fits(W3OH)
    data = table(W3OH)
    names = {-5: "XX", -6: "YY"}
    assert ds["spectrum"].dims == ("time", "polarization", "frequency")
    assert list(ds["polarization"].values) == [names[c] for c in data["CRVAL4"]]
    for i, code in enumerate(data["CRVAL4"]):
        np.testing.assert_array_equal(ds["spectrum"].sel(polarization=names[code]).values[0],
                                      data["DATA"][i])
        assert float(ds["tsys"].sel(polarization=names[code])[0]) == pytest.approx(data["TSYS"][i])
    xx = open_fits(W3OH, polarization="XX")
    assert xx["spectrum"].dims == ("time", "frequency") and xx.attrs["polarization"] == "XX"
    np.testing.assert_array_equal(xx["spectrum"].values[0], data["DATA"][data["CRVAL4"] == -5][0])
    mean = open_fits(W3OH, polarization="mean")
    np.testing.assert_allclose(mean["spectrum"].values[0],
                               data["DATA"].astype(np.float64).mean(axis=0), rtol=1e-6)
    with pytest.raises(DatasetError, match="RR not in the selected rows; they have YY, XX"):
        open_fits(W3OH, polarization="RR")


def test_reader_parameters_through_the_core():
    ds = open_dataset(W3OH, reader_params={"polarization": "XX"})
    assert ds.attrs["polarization"] == "XX"
    ds = open_dataset(RAW, reader_params={"scan": [263, 264], "cal": "F", "mix_states": False})
    assert ds.sizes["time"] == 2 and not ds["cal"].values.any()
    with pytest.raises(ConfigError, match="did you mean 'scan'"):
        open_dataset(RAW, reader_params={"scans": 263})


def test_empty_selection_names_what_the_file_has():
    with pytest.raises(DatasetError, match=r"no rows with scan=999 .* scan = 281, 282, 289, 290"):
        open_fits(ARGUS, scan=999)
    with pytest.raises(DatasetError, match="HDU 3 is not an SDFITS table; the SDFITS tables are "
                                           "HDU 1, 2"):
        open_fits(RAW, hdu=3)


def test_sdfits_options_on_a_fast_file_are_refused(tmp_path):
    from overtone_radio.simulate import Observation, simulate, write_fast_fits

    path = write_fast_fits(simulate(Observation(n_time=2, nchan=256)), tmp_path / "fast.fits")
    with pytest.raises(DatasetError, match="FAST raw FITS file: scan apply to SDFITS"):
        open_fits(path, scan=3)
    assert open_fits(path, polarization="YY")["spectrum"].dims == ("time", "frequency")


def test_dysh_flags_column_becomes_flag(tmp_path):
    """dysh writes its channel flags as a FLAGS column (uint8, one per channel)."""
    with fits.open(W3OH) as hdul:
        hdu = hdul[1]
        flags = np.zeros((len(hdu.data), 32768), np.uint8)
        flags[0, 100:110] = 1
        flags[1, 5:7] = 1
        cols = hdu.columns + fits.ColDefs([fits.Column("FLAGS", "32768B", array=flags)])
        out = fits.BinTableHDU.from_columns(cols, header=hdu.header)
        fits.HDUList([hdul[0].copy(), out]).writeto(tmp_path / "flagged.fits")
    ds = open_fits(tmp_path / "flagged.fits", chunks="auto")
    assert ds["flag"].dims == ("time", "polarization", "frequency") and ds["flag"].dtype == bool
    np.testing.assert_array_equal(ds["flag"].values[0], flags.astype(bool))


@pytest.mark.parametrize("name,hdu", [(NGC5291.name, 1), ("../cubes/region5_hcn_crop.fits", 0)])
def test_opening_reads_no_spectra(tmp_path, name, hdu):
    """Open, then change the file's data on disk: the values computed afterwards are the new
    ones, so nothing was read while opening (an eager reader returns the old values)."""
    import shutil

    path = tmp_path / "copy.fits"
    shutil.copy(GBT / name, path)
    ds = open_fits(path, chunks="auto")
    before = table(path, hdu)["DATA"] if hdu else np.array(fits.getdata(path))
    with fits.open(path, mode="update") as hdul:
        if hdu:
            hdul[hdu].data["DATA"] = -hdul[hdu].data["DATA"]
        else:
            hdul[0].data = -hdul[0].data
    after = ds["spectrum"].values
    expected = -np.asarray(before, np.float32)
    np.testing.assert_array_equal(after, expected if hdu else np.moveaxis(expected, 0, -1))


def test_cli_reads_a_selection_and_says_which_to_make(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "u8091.nc"
    base = [sys.executable, "-m", "overtone", "process", str(RAW), "--with", "fft-standing-wave",
            "-q", "-o", str(out)]
    refused = subprocess.run(base + ["--read", "object=U8091"], capture_output=True, text=True)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "4 setups" in refused.stderr and "--read scan=[263,264] --read cal=T" in refused.stderr
    run = subprocess.run(base + ["--read", "object=U8091", "--read", "scan=[263,264]", "--read",
                                 "cal=F"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    with open_dataset(out) as ds:
        assert ds.sizes["time"] == 2 and list(ds["scan"].values) == [263, 264]
        assert ds["spectrum"].attrs["units"] == "counts" and "velocity" in ds.coords
