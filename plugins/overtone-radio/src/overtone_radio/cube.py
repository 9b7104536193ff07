"""FITS spectral cubes (and single FITS spectra) read into and written from spectra Datasets.

The world coordinates come from the header through astropy's WCS. The spectral axis (``FREQ``,
``VRAD``, ``VOPT``, ``VELO``, ``FELO``, with or without an algorithm code) becomes the
``frequency`` dim in MHz: a velocity axis is turned into frequencies with the header's rest
frequency (``RESTFRQ``/``RESTFREQ``) and its own convention, and kept as the ``velocity``
coordinate (km/s). Celestial axes become ``y`` and ``x`` (FITS axis 2 and 1) with their world
coordinates (e.g. ``glon``/``glat``, ``ra``/``dec``) as 2-D coordinates; any other axis of
length 1 (Stokes) is dropped. The data stay on disk until dask reads them, a block of ``y``
rows at a time. :func:`write_cube` writes such a Dataset back with the original WCS.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from overtone import DatasetError

SPECTRAL = ("FREQ", "VRAD", "VOPT", "VELO", "FELO", "ZOPT", "WAVE", "AWAV", "BETA")
_CONVENTION = {"VRAD": "radio", "VOPT": "optical", "FELO": "optical", "ZOPT": "optical",
               "VELO": "relativistic", "BETA": "relativistic"}


def _spectral_index(header: Any) -> int | None:
    """0-based FITS axis index of the spectral axis (CTYPEi), or None."""
    for i in range(int(header.get("NAXIS", 0))):
        ctype = str(header.get(f"CTYPE{i + 1}", "")).upper()
        if ctype.split("-")[0] in SPECTRAL:
            return i
    return None


def find_cube_hdu(hdul: Any, hdu: Any = None) -> int | None:
    """Index of the first image HDU with data and a spectral axis (or ``hdu`` if it is one)."""
    from astropy.io import fits

    if isinstance(hdu, (list, tuple)):
        if len(hdu) != 1:
            raise DatasetError(f"hdu={hdu!r}: a cube is one image HDU; give one index")
        hdu = hdu[0]
    candidates = [int(hdu)] if hdu is not None else range(len(hdul))
    for i in candidates:
        if i >= len(hdul):
            raise DatasetError(f"HDU {i} does not exist; the file has {len(hdul)} HDUs")
        h = hdul[i]
        if isinstance(h, (fits.PrimaryHDU, fits.ImageHDU)) and h.header.get("NAXIS", 0) >= 1 \
                and _spectral_index(h.header) is not None:
            return i
        if hdu is not None:
            raise DatasetError(f"HDU {i} is not an image with a spectral axis (CTYPE FREQ, VRAD, "
                               "VOPT, VELO)")
    return None


def _rest_hz(header: Any) -> float | None:
    for key in ("RESTFRQ", "RESTFREQ"):
        if key in header and float(header[key]) > 0:
            return float(header[key])
    return None


def _read_slab(path: str, index: int, axis: int, start: int, stop: int,
               order: tuple[int, ...]) -> np.ndarray:
    """numpy axis ``axis`` rows ``start:stop`` of the image in HDU ``index``, transposed by
    ``order``, as float32."""
    from astropy.io import fits

    with fits.open(path, memmap=True, lazy_load_hdus=True) as hdul:
        data = hdul[index].data
        take = [slice(None)] * data.ndim
        take[axis] = slice(start, stop)
        return np.ascontiguousarray(np.transpose(data[tuple(take)], order), dtype=np.float32)


def open_cube_hdu(path: Path, hdul: Any, index: int, *, chunks: Any = None,
                  velocity: str | None = "auto") -> xr.Dataset:
    """The image in HDU ``index`` as a Dataset ``spectrum`` (y, x, frequency) (or (frequency)
    for a 1-D spectrum, (y, frequency) for 2-D), lazily in blocks of ``y``."""
    import astropy.units as u
    import dask
    import dask.array as da
    from astropy.wcs import WCS, FITSFixedWarning

    header = hdul[index].header
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        wcs = WCS(header)
    naxis = int(header["NAXIS"])
    spec = _spectral_index(header)
    shape_fits = [int(header[f"NAXIS{i + 1}"]) for i in range(naxis)]
    other = [i for i in range(naxis) if i != spec]
    dropped = [i for i in other if i not in (0, 1) or (wcs.naxis > i and _is_stokes(header, i))]
    if any(shape_fits[i] != 1 for i in dropped):
        raise DatasetError(f"{path.name}: axis {dropped[0] + 1} ({header.get(f'CTYPE{dropped[0] + 1}')}) "
                           "has more than one plane; only (x, y, spectral) cubes are read")
    spatial = [i for i in other if i not in dropped]  # FITS axes 1 (x) and 2 (y) that remain
    names = {0: "x", 1: "y"}
    dims = tuple(names[i] for i in reversed(spatial)) + ("frequency",)
    # numpy axes are FITS axes reversed; order puts y, x first and the spectral axis last
    np_axis = {i: naxis - 1 - i for i in range(naxis)}
    keep_np = [np_axis[i] for i in reversed(spatial)] + [np_axis[spec]]
    drop_np = [np_axis[i] for i in dropped]
    order = tuple(keep_np + drop_np)
    shape = tuple(shape_fits[i] for i in reversed(spatial)) + (shape_fits[spec],)
    block_axis = np_axis[spatial[-1]] if spatial else np_axis[spec]
    nblock = shape_fits[spatial[-1]] if spatial else shape_fits[spec]
    step = _cube_chunks(nblock, chunks, dims[0])
    parts = []
    for start in range(0, nblock, step):
        stop = min(nblock, start + step)
        d = dask.delayed(_read_slab, pure=True)(str(path), index, block_axis, start, stop, order)
        piece = (stop - start, *shape[1:]) if spatial else (stop - start,)
        arr = da.from_delayed(d, piece + (1,) * len(drop_np), np.float32)
        parts.append(arr.reshape(piece) if drop_np else arr)
    values = da.concatenate(parts, axis=0)
    if chunks is None:
        values = values.compute()
    # the spectral world coordinate of every channel (other axes at their reference pixel)
    spectral_wcs = wcs.sub([spec + 1])
    world = spectral_wcs.pixel_to_world(np.arange(shape_fits[spec]))
    ctype = str(header[f"CTYPE{spec + 1}"]).upper().split("-")[0]
    rest = _rest_hz(header)
    coords: dict[str, Any] = {}
    if ctype == "FREQ":
        freq_hz = world.to_value(u.Hz)
    elif ctype in _CONVENTION:
        if rest is None:
            raise DatasetError(f"{path.name}: a {ctype} axis needs RESTFRQ to give frequencies; "
                               "add it to the header")
        from overtone_radio.velocity import frequency_from_velocity

        vel = world.to_value(u.km / u.s)
        freq_hz = frequency_from_velocity(vel, rest, _CONVENTION[ctype])
        coords["velocity"] = ("frequency", vel, {
            "units": "km/s", "long_name": f"{_CONVENTION[ctype]} velocity",
            "doppler_convention": _CONVENTION[ctype], "rest_frequency_hz": rest,
            "frame": str(header.get("SPECSYS", "")).strip() or "unknown"})
    else:
        freq_hz = world.to(u.Hz, equivalencies=u.spectral()).value
    coords["frequency"] = ("frequency", freq_hz / 1e6, {"units": "MHz"})
    for axis in spatial:
        coords[names[axis]] = (names[axis], np.arange(shape_fits[axis]),
                               {"long_name": f"pixel along FITS axis {axis + 1}"})
    if len(spatial) == 2 and wcs.has_celestial:
        ny, nx = shape_fits[1], shape_fits[0]
        yy, xx = np.mgrid[0:ny, 0:nx]
        lon, lat = wcs.celestial.pixel_to_world_values(xx, yy)
        ctypes = [str(c).split("-")[0].lower() for c in wcs.celestial.wcs.ctype]
        coords[ctypes[0]] = (("y", "x"), lon, {"units": "deg"})
        coords[ctypes[1]] = (("y", "x"), lat, {"units": "deg"})
    unit = str(header.get("BUNIT", "")).strip()
    attrs = {"source_file": path.name, "format": "FITS cube", "fits_hdu": index,
             "fits_wcs": wcs.to_header_string(relax=True),
             "telescope": str(header.get("TELESCOP", "")).strip()}
    if rest is not None:
        attrs["rest_frequency_hz"] = rest
    ds = xr.Dataset({"spectrum": (dims, values, {"units": unit or "1"})}, coords=coords,
                    attrs=attrs)
    if "velocity" not in ds.coords and rest is not None and velocity not in (None, "none"):
        from overtone_radio.velocity import with_velocity

        convention = "radio" if velocity == "auto" else str(velocity)
        ds = with_velocity(ds, rest, convention, frame=str(header.get("SPECSYS", "")).strip()
                           or "unknown")
    return ds


def _is_stokes(header: Any, i: int) -> bool:
    return str(header.get(f"CTYPE{i + 1}", "")).upper().startswith("STOKES")


def _cube_chunks(n: int, chunks: Any, dim: str) -> int:
    if chunks is None:
        return n
    if isinstance(chunks, dict):
        chunks = chunks.get(dim, "auto")
    if chunks in ("auto", -1, None):
        return min(n, 64)
    return max(1, int(chunks))


def write_cube(ds: xr.Dataset, path: str | Path, variable: str = "spectrum", *,
               overwrite: bool = False) -> Path:
    """Write ``ds[variable]`` (dims (y, x, frequency), (frequency) or (y, frequency)) as a FITS
    image with the spectral axis as FITS axis 3 (or 1 for a spectrum).

    The WCS is the one the cube came with (``attrs["fits_wcs"]``) when present; otherwise a
    linear ``FREQ`` axis (Hz) from the ``frequency`` coordinate (which must then be evenly
    spaced) and plain pixel axes. The file is written to a temporary name and renamed, so an
    existing file is never left half-written; it is refused unless ``overwrite``.
    """
    from astropy.io import fits
    from astropy.wcs import WCS

    path = Path(path)
    if path.exists() and not overwrite:
        raise DatasetError(f"{str(path)!r} exists; pass overwrite=True or choose another name")
    if variable not in ds:
        raise DatasetError(f"no variable {variable!r} to write; have {', '.join(ds.data_vars)}")
    da_ = ds[variable]
    allowed = {("y", "x", "frequency"), ("frequency",), ("y", "frequency")}
    if tuple(da_.dims) not in allowed:
        raise DatasetError(f"{variable!r} has dims {da_.dims}; write_cube takes (y, x, "
                           "frequency), (y, frequency) or (frequency)")
    data = np.asarray(da_.values, dtype=np.float32)
    if da_.ndim == 3:
        data = np.moveaxis(data, -1, 0)  # numpy (spectral, y, x) = FITS axes (x, y, spectral)
    if "fits_wcs" in ds.attrs and da_.ndim == 3:
        header = WCS(fits.Header.fromstring(ds.attrs["fits_wcs"])).to_header(relax=True)
    else:
        freq = np.asarray(ds["frequency"].values, np.float64) * 1e6
        step = np.diff(freq)
        if len(freq) > 1 and not np.allclose(step, step[0], rtol=1e-9, atol=1e-6 * abs(step[0])):
            raise DatasetError("the frequency coordinate is not evenly spaced; a FITS linear "
                               "axis cannot describe it")
        wcs = WCS(naxis=da_.ndim)
        spec = 2 if da_.ndim == 3 else 0  # FITS axis 3 of a cube, axis 1 otherwise
        wcs.wcs.ctype = ["FREQ" if i == spec else "PIXEL" for i in range(da_.ndim)]
        wcs.wcs.cunit = ["Hz" if i == spec else "" for i in range(da_.ndim)]
        wcs.wcs.crpix = [1.0] * da_.ndim
        wcs.wcs.crval = [freq[0] if i == spec else 0.0 for i in range(da_.ndim)]
        wcs.wcs.cdelt = [(step[0] if len(step) else 1.0) if i == spec else 1.0
                         for i in range(da_.ndim)]
        if "rest_frequency_hz" in ds.attrs:
            wcs.wcs.restfrq = float(ds.attrs["rest_frequency_hz"])
        header = wcs.to_header()
    unit = da_.attrs.get("units")
    if unit:
        header["BUNIT"] = str(unit)
    tmp = Path(tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)[1])
    try:
        fits.PrimaryHDU(data=data, header=header).writeto(tmp, overwrite=True)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
