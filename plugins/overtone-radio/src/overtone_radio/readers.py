"""Readers of single-dish spectra into the spectra data model, lazily chunked along time.

* FAST raw FITS (as FAST and HiFAST write it): binary table HDU 1 with ``DATA`` (nrow, nchan, 4;
  XX, YY, XY, YX), ``UTOBS`` (MJD), ``FREQ`` (first channel, MHz), ``CHAN_BW`` (MHz),
  ``NCHAN``, ``EXPOSURE`` (s).
* SDFITS: a ``SINGLE DISH`` table with ``DATA`` (nrow, nchan) and the frequency axis in
  ``CRVAL1``/``CDELT1``/``CRPIX1`` (Hz); rows become ``time``.
* HiFAST HDF5: group ``S`` with ``T``/``Ta``/``Power``/``flux`` (pol, time, chan), ``freq``
  (MHz), ``mjd`` and optional ``is_rfi`` (-> ``flag``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from overtone import DatasetError

POLS = ("XX", "YY", "XY", "YX")


def _check_complete(path: Path, hdul: Any) -> None:
    """Raise if the file is shorter than its headers promise (a truncated download)."""
    size = os.path.getsize(path)
    for i, hdu in enumerate(hdul):
        end = hdu._data_offset + hdu._data_size if hdu._data_offset is not None else 0
        if end > size:
            raise DatasetError(f"{str(path)!r} is truncated: HDU {i} needs {end} bytes, the file "
                               f"has {size}; download or write it again")


MJD_EPOCH = np.datetime64("1858-11-17T00:00:00", "ns")


def utc_from_mjd(mjd: np.ndarray) -> np.ndarray:
    """datetime64[ns] UTC of Modified Julian Dates (days since 1858-11-17 00:00 UTC), so that
    the pieces of one observation in several files join in time order."""
    return MJD_EPOCH + np.round(np.asarray(mjd, np.float64) * 86400e9).astype("timedelta64[ns]")


def _time_chunks(nrow: int, chunks: Any) -> int:
    if chunks is None:
        return nrow
    if isinstance(chunks, dict):
        chunks = chunks.get("time", nrow)
    if chunks in ("auto", -1, None):
        return min(nrow, 256)
    return max(1, int(chunks))


def _read_rows(path: str, hdu: int, column: str, start: int, stop: int, select: Any) -> np.ndarray:
    from astropy.io import fits

    with fits.open(path, memmap=True, lazy_load_hdus=True) as hdul:
        rows = hdul[hdu].data[column][start:stop]
        return np.ascontiguousarray(select(np.asarray(rows)), dtype=np.float32)


def _lazy(path: Path, hdu: int, column: str, nrow: int, shape: tuple[int, ...], chunks: Any,
          select: Any) -> Any:
    import dask
    import dask.array as da

    step = _time_chunks(nrow, chunks)
    blocks = []
    for start in range(0, nrow, step):
        stop = min(nrow, start + step)
        d = dask.delayed(_read_rows, pure=True)(str(path), hdu, column, start, stop, select)
        blocks.append(da.from_delayed(d, (stop - start, *shape), np.float32))
    arr = da.concatenate(blocks, axis=0)
    return arr if chunks is not None else arr.compute()


def open_fits(path: str | Path, *, chunks: Any = None, polarization: str = "XX,YY") -> xr.Dataset:
    """Open a FAST raw FITS or an SDFITS file as a spectra Dataset (lazy with ``chunks``).

    ``polarization`` (FAST files): ``"XX,YY"`` (a ``polarization`` dim), ``"XX"``, ``"YY"``
    or ``"mean"`` ((XX + YY) / 2, no polarization dim).
    """
    from astropy.io import fits

    path = Path(path)
    try:
        hdul = fits.open(path, memmap=True, lazy_load_hdus=False)
    except (OSError, ValueError, TypeError) as exc:
        raise DatasetError(f"cannot read {str(path)!r} as FITS ({exc}); the file is truncated "
                           "or not FITS") from exc
    with hdul:
        _check_complete(path, hdul)
        for i, hdu in enumerate(hdul):
            if isinstance(hdu, fits.BinTableHDU):
                names = {n.upper() for n in hdu.columns.names}
                if {"DATA", "FREQ", "CHAN_BW"} <= names:
                    return _open_fast(path, i, hdu, chunks, polarization)
                if "DATA" in names and ("CRVAL1" in names or "CRVAL1" in hdu.header):
                    return _open_sdfits(path, i, hdu, chunks)
    raise DatasetError(f"{str(path)!r} has no FAST (DATA, FREQ, CHAN_BW) or SDFITS "
                       "(DATA, CRVAL1) binary table")


def _open_fast(path: Path, index: int, hdu: Any, chunks: Any, polarization: str) -> xr.Dataset:
    cols = hdu.columns
    nrow = hdu.header["NAXIS2"]
    dim = cols["DATA"].dim
    data_shape = hdu.data["DATA"].shape[1:] if nrow else ()
    if len(data_shape) != 2 or data_shape[-1] != 4:
        raise DatasetError(f"{str(path)!r}: DATA has shape {data_shape} per row (TDIM {dim}); a "
                           "FAST file has (nchan, 4)")
    nchan = data_shape[0]
    first = hdu.data[0]
    f0, bw = float(first["FREQ"]), float(first["CHAN_BW"])
    if "NCHAN" in cols.names and int(first["NCHAN"]) != nchan:
        raise DatasetError(f"{str(path)!r}: NCHAN = {int(first['NCHAN'])} but DATA holds {nchan}")
    if np.any(hdu.data["FREQ"] != f0) or np.any(hdu.data["CHAN_BW"] != bw):
        raise DatasetError(f"{str(path)!r}: FREQ or CHAN_BW changes between rows; split the file")
    pols = [p.strip() for p in polarization.split(",")]
    if polarization == "mean":
        select, pdims, shape = (lambda a: a[:, :, :2].mean(axis=2)), (), (nchan,)
    elif all(p in POLS for p in pols) and pols:
        which = [POLS.index(p) for p in pols]
        if len(which) == 1:
            select, pdims, shape = (lambda a: a[:, :, which[0]]), (), (nchan,)
        else:
            select, pdims, shape = (lambda a: np.moveaxis(a[:, :, which], 2, 1)), ("polarization",), (len(which), nchan)
    else:
        raise DatasetError(f"polarization = {polarization!r}; use 'XX,YY', 'XX', 'YY' or 'mean'")
    values = _lazy(path, index, "DATA", nrow, shape, chunks, select)
    unit = (cols["DATA"].unit or "").strip() or "counts"
    mjd = np.asarray(hdu.data["UTOBS"], dtype=np.float64)
    exposure = np.asarray(hdu.data["EXPOSURE"], np.float64) if "EXPOSURE" in cols.names else None
    coords = {"time": ("time", utc_from_mjd(mjd), {"long_name": "UTC"}),
              "mjd": ("time", mjd, {"units": "d"}),
              "frequency": ("frequency", f0 + bw * np.arange(nchan), {"units": "MHz"})}
    if pdims:
        coords["polarization"] = ("polarization", pols)
    variables = {"spectrum": (("time", *pdims, "frequency"), values, {"units": unit})}
    if exposure is not None:
        variables["exposure"] = ("time", exposure, {"units": "s"})
    return xr.Dataset(variables, coords=coords,
                      attrs={"source_file": path.name, "format": "FAST raw FITS"})


def _open_sdfits(path: Path, index: int, hdu: Any, chunks: Any) -> xr.Dataset:
    data = hdu.data
    nrow = len(data)
    names = {n.upper() for n in hdu.columns.names}

    def field(key: str, default: Any = None) -> np.ndarray:
        if key in names:
            return np.asarray(data[key])
        if key in hdu.header:
            return np.full(nrow, hdu.header[key])
        if default is None:
            raise DatasetError(f"{str(path)!r}: SDFITS table lacks {key}")
        return np.full(nrow, default)

    nchan = data["DATA"].shape[-1]
    crval, cdelt, crpix = field("CRVAL1"), field("CDELT1"), field("CRPIX1", 1.0)
    if np.ptp(crval) or np.ptp(cdelt) or np.ptp(crpix):
        raise DatasetError(f"{str(path)!r}: rows have different frequency axes (CRVAL1/CDELT1); "
                           "select rows of one setup first")
    freq_hz = crval[0] + (np.arange(nchan) + 1 - crpix[0]) * cdelt[0]
    values = _lazy(path, index, "DATA", nrow, (nchan,), chunks, lambda a: a.reshape(len(a), -1))
    unit = (hdu.columns["DATA"].unit or hdu.header.get("BUNIT", "") or "").strip() or "counts"
    variables = {"spectrum": (("time", "frequency"), values, {"units": unit})}
    if "EXPOSURE" in names:
        variables["exposure"] = ("time", np.asarray(data["EXPOSURE"], np.float64), {"units": "s"})
    if "TSYS" in names:
        variables["tsys"] = ("time", np.asarray(data["TSYS"], np.float64), {"units": "K"})
    coords = {"time": ("time", np.arange(nrow, dtype=np.float64), {"units": "1", "long_name": "row"}),
              "frequency": ("frequency", freq_hz / 1e6, {"units": "MHz"})}
    return xr.Dataset(variables, coords=coords, attrs={"source_file": path.name, "format": "SDFITS"})


def open_hifast(path: str | Path, *, chunks: Any = None, field: str | None = None) -> xr.Dataset:
    """Open a HiFAST HDF5 file (group ``S``): spectra (pol, time, chan) -> (time, polarization,
    frequency), ``freq`` in MHz, ``mjd``; ``is_rfi`` becomes ``flag``."""
    import h5py

    path = Path(path)
    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        raise DatasetError(f"cannot read {str(path)!r} as HDF5 ({exc}); truncated or not HDF5") from exc
    with h5:
        if "S" not in h5:
            raise DatasetError(f"{str(path)!r} has no group 'S'; not a HiFAST file")
        group = h5["S"]
        names = [field] if field else ["T", "Ta", "flux", "Power"]
        name = next((n for n in names if n in group), None)
        if name is None:
            raise DatasetError(f"{str(path)!r}: group S has none of {names}")
        values = np.asarray(group[name], dtype=np.float32)
        freq = np.asarray(group["freq"], dtype=np.float64)
        mjd = np.asarray(group["mjd"], dtype=np.float64) if "mjd" in group else None
        flag = np.asarray(group["is_rfi"], dtype=bool) if "is_rfi" in group else None
    if values.ndim == 2:
        values = values[None]
    spectra = np.moveaxis(values, 0, 1)  # (time, pol, chan)
    units = {"T": "K", "Ta": "K", "flux": "mJy", "Power": "counts"}[name]
    coords = {"frequency": ("frequency", freq, {"units": "MHz"}),
              "polarization": ("polarization", list(POLS[: spectra.shape[1]]))}
    if mjd is not None:
        coords["time"] = ("time", utc_from_mjd(mjd), {"long_name": "UTC"})
        coords["mjd"] = ("time", mjd, {"units": "d"})
    ds = xr.Dataset({"spectrum": (("time", "polarization", "frequency"), spectra, {"units": units})},
                    coords=coords, attrs={"source_file": path.name, "format": "HiFAST HDF5"})
    if flag is not None:
        ds["flag"] = (("time", "frequency"), flag)
    if chunks is not None:
        ds = ds.chunk({"time": _time_chunks(spectra.shape[0], chunks)})
    return ds
