"""From dysh (GBT's Python single-dish package) to an overtone spectra Dataset.

Install with ``pip install "overtone-radio[gbt]"``. dysh calibrates (``getps``, ``getfs``,
``gettp``, ``getnod``, ``subbeamnod`` ...) and returns a ``ScanBlock`` of scans, each holding its
calibrated integrations, or a ``Spectrum`` (e.g. ``ScanBlock.timeaverage()``).
:func:`from_dysh` turns any of these into the same Dataset the SDFITS reader gives: ``spectrum``
(time, frequency) with units, ``tsys``, ``exposure``, ``flag`` (dysh's mask), UTC ``time`` from
DATE-OBS, and the OBJECT, SCAN, IFNUM, PLNUM, FDNUM, RA/DEC, RESTFREQ and VELDEF coordinates, and
a ``velocity`` coordinate. Only dysh's public API is used: ``ScanBase.calibrated``,
``ScanBase.meta``, ``ScanBase.getspec``, ``Spectrum.spectral_axis``, ``.flux``, ``.mask`` and
``.meta``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import xarray as xr
from overtone import DatasetError

from overtone_radio.sdfits import FIELDS, Rows, attach_velocity, time_axis, units_of

_DYSH_UNITS = {"ct": "counts", "K": "K", "Jy": "Jy", "": "counts"}


def _pieces(obj: Any) -> list[tuple[np.ndarray, np.ndarray | None, np.ndarray, list[dict], str]]:
    """(values (n, nchan), mask or None, frequency Hz, metas, unit) for each piece of ``obj``."""
    import astropy.units as u

    kind = type(obj).__name__
    if hasattr(obj, "spectral_axis") and hasattr(obj, "flux"):  # a dysh Spectrum
        values = np.asarray(obj.flux.value, np.float64)[None]
        mask = None if obj.mask is None else np.asarray(obj.mask, bool)[None]
        return [(values, mask, obj.spectral_axis.to_value(u.Hz), [dict(obj.meta)],
                 obj.flux.unit.to_string())]
    if hasattr(obj, "calibrated") and hasattr(obj, "getspec"):  # a dysh ScanBase
        data = obj.calibrated
        values = np.ma.getdata(data).astype(np.float64)
        mask = np.ma.getmaskarray(data) if np.ma.is_masked(data) else None
        first = obj.getspec(0)
        metas = obj.meta if isinstance(obj.meta, list) else [obj.meta] * len(values)
        return [(values, mask, first.spectral_axis.to_value(u.Hz), list(metas),
                 first.flux.unit.to_string())]
    if isinstance(obj, Iterable) and not isinstance(obj, (str, bytes)):  # ScanBlock or a list
        pieces = [p for item in obj for p in _pieces(item)]
        if not pieces:
            raise DatasetError(f"the dysh {kind} holds no scans or spectra")
        return pieces
    raise DatasetError(f"cannot convert a {kind}: from_dysh takes a dysh Spectrum, a scan "
                       "(getps/getfs/... result item), a ScanBlock or a list of them")


def _meta_rows(metas: list[dict], nchan: int) -> Rows:
    """The SDFITS row fields of dysh metadata dictionaries (SDFITS keyword names)."""
    fields: dict[str, np.ndarray] = {}
    for name, (key, default) in FIELDS.items():
        found = []
        for meta in metas:
            value = next((meta[k] for k in key.split("|") if k in meta), default)
            found.append(value)
        fields[name] = np.asarray(found, dtype=object)
    for name in ("scan", "ifnum", "plnum", "fdnum", "intnum", "crval4"):
        fields[name] = fields[name].astype(np.int64)
    for name in ("crval1", "cdelt1", "crpix1", "restfreq", "tsys", "exposure", "crval2", "crval3",
                 "vframe", "sitelong", "sitelat", "siteelev", "equinox", "mjd", "utc_seconds"):
        fields[name] = np.array([np.nan if v is None else v for v in fields[name]], np.float64)
    for name in ("cal", "sig"):
        fields[name] = np.array([str(v).strip().upper() in ("T", "TRUE", "1")
                                 for v in fields[name]])
    for name in ("object", "ctype1", "date_obs", "veldef", "ctype2", "ctype3", "tunit",
                 "radesys", "telescop"):
        fields[name] = np.array([str(v).strip() for v in fields[name]], dtype=object)
    n = len(metas)
    return Rows(np.zeros(n, np.int64), np.arange(n), np.full(n, nchan), fields)


def from_dysh(obj: Any, *, max_shift_channels: float = 0.5, velocity: str | None = "auto"
              ) -> xr.Dataset:
    """A spectra Dataset (``spectrum`` (time, frequency)) from dysh results.

    ``obj``: a dysh ``Spectrum``, a scan (an item of the ``ScanBlock`` that ``getps``/``getfs``/
    ``gettp``/``getnod`` return; its calibrated integrations become time rows), a ``ScanBlock``
    or a list of these. All pieces must share the frequency axis within
    ``max_shift_channels`` channels, as SDFITS rows of one setup must.
    """
    pieces = _pieces(obj)
    nchan = pieces[0][0].shape[-1]
    ref = pieces[0][2]
    width = abs(ref[1] - ref[0]) if nchan > 1 else 1.0
    for values, _, freq, _, _ in pieces[1:]:
        if values.shape[-1] != nchan or abs(freq[0] - ref[0]) > max_shift_channels * width \
                or abs((freq[-1] - freq[0]) - (ref[-1] - ref[0])) > 1e-6 * width * nchan:
            raise DatasetError("the dysh pieces have different frequency axes (channels "
                               f"{values.shape[-1]} vs {nchan}, or shifted by more than "
                               f"{max_shift_channels} channel); convert each setup separately")
    units = {_DYSH_UNITS.get(p[4], p[4]) for p in pieces}
    if len(units) > 1:
        raise DatasetError(f"the dysh pieces have different units {sorted(units)}; convert "
                           "calibrated and uncalibrated data separately")
    values = np.concatenate([p[0] for p in pieces]).astype(np.float32)
    metas = [m for p in pieces for m in p[3]]
    if len(metas) != len(values):
        raise DatasetError(f"dysh gave {len(metas)} metadata rows for {len(values)} spectra")
    rows = _meta_rows(metas, nchan)
    unit = units.pop()
    scale = ""
    if unit == "K":
        unit, scale = units_of(np.array([rows.fields["tunit"][0] or "K"], dtype=object), "dysh")
    time, timed = time_axis(rows)
    attrs = {"units": unit}
    if scale:
        attrs["brightness_scale"] = scale
    data_vars: dict[str, Any] = {
        "spectrum": (("time", "frequency"), values, attrs),
        "tsys": ("time", rows.fields["tsys"], {"units": "K"}),
        "exposure": ("time", rows.fields["exposure"], {"units": "s"}),
    }
    masks = [p[1] if p[1] is not None else np.zeros(p[0].shape, bool) for p in pieces]
    if any(p[1] is not None for p in pieces):
        data_vars["flag"] = (("time", "frequency"), np.concatenate(masks),
                             {"long_name": "dysh mask (channel flagged)"})
    coords: dict[str, Any] = {
        "time": ("time", time, {"long_name": "UTC (DATE-OBS)"} if timed else {"units": "1"}),
        "frequency": ("frequency", ref / 1e6, {"units": "MHz"}),
    }
    for key in ("object", "scan", "ifnum", "plnum", "fdnum", "intnum", "veldef"):
        values_k = rows.fields[key]
        coords[key] = ("time", values_k.astype(str) if values_k.dtype == object else values_k)
    coords["restfreq"] = ("time", rows.fields["restfreq"] / 1e6, {"units": "MHz"})
    for key, axis in (("crval2", "ctype2"), ("crval3", "ctype3")):
        label = (rows.fields[axis][0] or key).lower().split("-")[0]
        coords[label] = ("time", rows.fields[key], {"units": "deg"})
    ds = xr.Dataset(data_vars, coords=coords,
                    attrs={"format": "dysh", "telescope": rows.fields["telescop"][0]})
    # dysh's spectral axis is the frequency axis as given: velocity from it as the reader does
    rows.fields["crval1"] = np.full(len(rows), ref[0])
    rows.fields["cdelt1"] = np.full(len(rows), ref[1] - ref[0] if nchan > 1 else 1.0)
    rows.fields["crpix1"] = np.ones(len(rows))
    return attach_velocity(ds, rows, 0, velocity, time[0] if timed else None)
