"""Readers of single-dish spectra into the spectra data model, lazily chunked along time.

* FAST raw FITS (as FAST and HiFAST write it): binary table HDU 1 with ``DATA`` (nrow, nchan, 4;
  XX, YY, XY, YX), ``UTOBS`` (MJD), ``FREQ`` (first channel, MHz), ``CHAN_BW`` (MHz),
  ``NCHAN``, ``EXPOSURE`` (s).
* SDFITS: ``SINGLE DISH`` tables (GBT sdfits, GBTIDL, dysh): see :mod:`overtone_radio.sdfits`.
* FITS spectral cubes (FREQ, VRAD, VOPT, VELO axis): see :mod:`overtone_radio.cube`.
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


def _data_bytes(header: Any) -> int:
    """Bytes of an HDU's data as its header states them (FITS 4.4.1: |BITPIX| / 8 x GCOUNT x
    (PCOUNT + NAXIS1 x ... x NAXISn); 0 when NAXIS = 0)."""
    naxis = int(header.get("NAXIS", 0))
    if naxis == 0:
        return 0
    shape = [int(header.get(f"NAXIS{i}", 0)) for i in range(1, naxis + 1)]
    if header.get("GROUPS") and shape[0] == 0:  # random groups: NAXIS1 = 0 is not a length
        shape = shape[1:]
    return abs(int(header["BITPIX"])) // 8 * int(header.get("GCOUNT", 1)) * (
        int(header.get("PCOUNT", 0)) + int(np.prod(shape)))


def _check_complete(path: Path, hdul: Any) -> None:
    """Raise if the file is shorter than its headers promise (a truncated download), from
    the public ``HDUList.fileinfo`` data offsets and the header-stated data sizes."""
    size = os.path.getsize(path)
    for i, hdu in enumerate(hdul):
        start = hdul.fileinfo(i)["datLoc"]
        end = (start or 0) + _data_bytes(hdu.header)
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


def open_fits(path: str | Path, *, chunks: Any = None, polarization: str | None = None,
              hdu: Any = None, scan: Any = None, ifnum: Any = None, plnum: Any = None,
              fdnum: Any = None, cal: Any = None, sig: Any = None, object: Any = None,
              align: str = "tolerate", max_shift_channels: float = 0.5,
              mix_states: bool = False, velocity: str | None = "auto") -> xr.Dataset:
    """Open a FAST raw FITS file, an SDFITS file or a FITS spectral cube as a spectra Dataset
    (lazy with ``chunks``).

    ``polarization``: FAST: ``"XX,YY"`` (default; a ``polarization`` dim), ``"XX"``, ``"YY"``
    or ``"mean"`` ((XX + YY) / 2, no polarization dim); SDFITS: see
    :func:`overtone_radio.sdfits.open_sdfits`, which also takes the row selection (``hdu``,
    ``scan``, ``ifnum``, ``plnum``, ``fdnum``, ``cal``, ``sig``, ``object``), ``align``,
    ``max_shift_channels``, ``mix_states`` and ``velocity``. A cube takes ``hdu`` and
    ``velocity`` (:mod:`overtone_radio.cube`). Options that do not apply to the file's kind
    are refused.
    """
    from astropy.io import fits

    from overtone_radio import cube, sdfits

    path = Path(path)
    selection = {"scan": scan, "ifnum": ifnum, "plnum": plnum, "fdnum": fdnum, "cal": cal,
                 "sig": sig, "object": object}
    sdfits_only = {**selection, "align": align != "tolerate",
                   "max_shift_channels": max_shift_channels != 0.5, "mix_states": mix_states}
    sdfits_only = [k for k, v in sdfits_only.items() if v is not None and v is not False]
    try:
        hdul = fits.open(path, memmap=True, lazy_load_hdus=False)
    except (OSError, ValueError, TypeError) as exc:
        raise DatasetError(f"cannot read {str(path)!r} as FITS ({exc}); the file is truncated "
                           "or not FITS") from exc
    with hdul:
        _check_complete(path, hdul)
        for i, table in enumerate(hdul):
            if isinstance(table, fits.BinTableHDU):
                names = {n.upper() for n in table.columns.names}
                if {"DATA", "FREQ", "CHAN_BW"} <= names:
                    extra = sdfits_only + (["hdu"] if hdu is not None else []) + (
                        ["velocity"] if velocity != "auto" else [])
                    if extra:
                        raise DatasetError(f"{path.name} is a FAST raw FITS file: "
                                           f"{', '.join(extra)} apply to SDFITS and cubes "
                                           "only; FAST takes polarization=")
                    return _open_fast(path, i, table, chunks, polarization or "XX,YY")
        if any(sdfits.is_sdfits_table(h) for h in hdul):
            return sdfits.open_sdfits(path, hdul, chunks=chunks, hdu=hdu,
                                      polarization=polarization, align=align,
                                      max_shift_channels=max_shift_channels,
                                      mix_states=mix_states, velocity=velocity, **selection)
        found = cube.find_cube_hdu(hdul, hdu)
        if found is not None:
            if sdfits_only or polarization:
                raise DatasetError(f"{path.name} is a FITS cube: "
                                   f"{', '.join(sdfits_only or ['polarization'])} apply to "
                                   "SDFITS only; a cube takes hdu= and velocity=")
            return cube.open_cube_hdu(path, hdul, found, chunks=chunks, velocity=velocity)
    raise DatasetError(f"{str(path)!r} has no FAST (DATA, FREQ, CHAN_BW) or SDFITS "
                       "(DATA, CRVAL1) binary table and no image with a spectral axis "
                       "(FREQ, VRAD, VOPT, VELO)")


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


HIFAST_UNITS = {"T": "K", "Ta": "K", "flux": "mJy", "Power": "counts"}


def _read_h5(path: str, name: str, start: int, stop: int, kind: str) -> np.ndarray:
    """Rows ``start:stop`` (time) of HiFAST ``S/<name>`` as (time, pol, chan) float32, or of
    ``S/is_rfi`` as (time, chan) bool: one h5py hyperslab read, nothing else."""
    import h5py

    with h5py.File(path, "r") as h5:
        dset = h5["S"][name]
        if kind == "flag":
            return np.asarray(dset[start:stop], dtype=bool)
        if dset.ndim == 2:
            return np.asarray(dset[start:stop], dtype=np.float32)[:, None, :]
        return np.ascontiguousarray(np.moveaxis(np.asarray(dset[:, start:stop], np.float32), 0, 1))


def open_hifast(path: str | Path, *, chunks: Any = None, field: str | None = None) -> xr.Dataset:
    """Open a HiFAST HDF5 file (group ``S``): spectra (pol, time, chan) -> (time, polarization,
    frequency), ``freq`` in MHz, ``mjd``; ``is_rfi`` becomes ``flag``.

    Opening reads only ``freq``, ``mjd`` and the shapes: the spectra and ``is_rfi`` are read by
    dask, one time chunk per task (``chunks``; ``None`` reads them now).
    """
    import dask
    import dask.array as da
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
        shape = group[name].shape
        freq = np.asarray(group["freq"], dtype=np.float64)
        mjd = np.asarray(group["mjd"], dtype=np.float64) if "mjd" in group else None
        flag_shape = group["is_rfi"].shape if "is_rfi" in group else None
    npol, ntime, nchan = (1, *shape) if len(shape) == 2 else shape
    if nchan != len(freq):
        raise DatasetError(f"{path.name}: S/{name} has {nchan} channels, S/freq {len(freq)}")
    step = _time_chunks(ntime, chunks)

    def lazy(kind: str, block: tuple[int, ...], dtype: Any, dataset: str) -> Any:
        parts = []
        for start in range(0, ntime, step):
            stop = min(ntime, start + step)
            d = dask.delayed(_read_h5, pure=True)(str(path), dataset, start, stop, kind)
            parts.append(da.from_delayed(d, (stop - start, *block), dtype))
        arr = da.concatenate(parts, axis=0)
        return arr if chunks is not None else arr.compute()

    spectra = lazy("data", (npol, nchan), np.float32, name)
    coords = {"frequency": ("frequency", freq, {"units": "MHz"}),
              "polarization": ("polarization", list(POLS[:npol]))}
    if mjd is not None:
        coords["time"] = ("time", utc_from_mjd(mjd), {"long_name": "UTC"})
        coords["mjd"] = ("time", mjd, {"units": "d"})
    ds = xr.Dataset({"spectrum": (("time", "polarization", "frequency"), spectra,
                                  {"units": HIFAST_UNITS.get(name, "")})},
                    coords=coords, attrs={"source_file": path.name, "format": "HiFAST HDF5"})
    if flag_shape is not None:
        if tuple(flag_shape) != (ntime, nchan):
            raise DatasetError(f"{path.name}: S/is_rfi has shape {flag_shape}, expected "
                               f"(time, chan) = {(ntime, nchan)}")
        ds["flag"] = (("time", "frequency"), lazy("flag", (nchan,), bool, "is_rfi"))
    return ds
