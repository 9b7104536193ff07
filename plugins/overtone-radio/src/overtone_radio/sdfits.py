"""SDFITS (single-dish FITS, as GBT's sdfits filler, GBTIDL and dysh write it) into spectra.

Every ``SINGLE DISH`` binary table row is one spectrum (``DATA``, channels along ``CRVAL1`` /
``CDELT1`` / ``CRPIX1`` in Hz). Rows are chosen by ``hdu``, ``scan``, ``ifnum``, ``plnum``,
``fdnum``, ``cal``, ``sig``, ``object`` and ``polarization``; the chosen rows must be one setup
(same channels, spectral window, feed and OBJECT) to become one time series, or the reader says
which selection separates them. Noise-diode (CAL) and signal/reference (SIG) states count as
separate setups unless ``mix_states=True``. Rows of one setup whose frequency axes differ by a fraction of a
channel (Doppler tracking) are joined as they are (``align="tolerate"``, at most
``max_shift_channels``) or interpolated onto the first row's axis (``align="regrid"``). Rows of
several polarizations (PLNUM, named by ``CRVAL4``) that pair up in time become a
``polarization`` dim. The data stay on disk: dask reads the chosen rows chunk by chunk.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from overtone import DatasetError

STOKES = {1: "I", 2: "Q", 3: "U", 4: "V", -1: "RR", -2: "LL", -3: "RL", -4: "LR", -5: "XX",
          -6: "YY", -7: "XY", -8: "YX"}
KELVIN_SCALES = {"K", "TA", "TA*", "TMB", "TB", "TR*", "TR", "TSKY"}
SELECT_KEYS = ("scan", "ifnum", "plnum", "fdnum", "cal", "sig", "object")
_C_KMS = 299792.458


@dataclass
class Rows:
    """Per-row metadata of the rows of an SDFITS file (one entry per row, all tables)."""

    hdu: np.ndarray
    row: np.ndarray
    nchan: np.ndarray
    fields: dict[str, np.ndarray]

    def take(self, keep: np.ndarray) -> Rows:
        return Rows(self.hdu[keep], self.row[keep], self.nchan[keep],
                    {k: v[keep] for k, v in self.fields.items()})

    def __len__(self) -> int:
        return len(self.hdu)


def is_sdfits_table(hdu: Any) -> bool:
    """A binary table with a ``DATA`` column and ``CRVAL1`` as a column or header keyword."""
    from astropy.io import fits

    if not isinstance(hdu, fits.BinTableHDU):
        return False
    names = {n.upper() for n in hdu.columns.names}
    return "DATA" in names and ("CRVAL1" in names or "CRVAL1" in hdu.header)


def _field(hdu: Any, key: str, nrow: int, default: Any) -> np.ndarray:
    """A column, else the header keyword of the same name (SDFITS "virtual column"), else
    ``default`` (``None``: absent). ``key`` may list alternatives: ``"INTNUM|INT"``."""
    names = {n.upper(): n for n in hdu.columns.names}
    for alt in key.split("|"):
        if alt in names:
            return np.asarray(hdu.data[names[alt]])
        if alt in hdu.header:
            return np.full(nrow, hdu.header[alt])
    return np.full(nrow, default, dtype=object) if default is not None else None


def _strings(values: np.ndarray) -> np.ndarray:
    return np.array([str(v).strip() for v in values], dtype=object)


def _flags(values: np.ndarray) -> np.ndarray:
    """SDFITS T/F (strings, bools or 0/1) as bool."""
    if values.dtype.kind == "b":
        return values
    if values.dtype.kind in "iuf":
        return values != 0
    return np.array([str(v).strip().upper() in ("T", "TRUE", "1") for v in values])


FIELDS = {  # name -> (SDFITS key, default when absent)
    "object": ("OBJECT", ""), "scan": ("SCAN", -1), "ifnum": ("IFNUM", 0), "plnum": ("PLNUM", 0),
    "fdnum": ("FDNUM", 0), "intnum": ("INTNUM|INT", -1), "cal": ("CAL", "F"), "sig": ("SIG", "T"),
    "crval1": ("CRVAL1", None), "cdelt1": ("CDELT1", None), "crpix1": ("CRPIX1", 1.0),
    "ctype1": ("CTYPE1", "FREQ"), "crval4": ("CRVAL4", 0), "date_obs": ("DATE-OBS", ""),
    "mjd": ("MJD", np.nan), "utc_seconds": ("TIME", np.nan), "restfreq": ("RESTFREQ", np.nan),
    "veldef": ("VELDEF", ""), "tsys": ("TSYS", np.nan), "exposure": ("EXPOSURE", np.nan),
    "crval2": ("CRVAL2", np.nan), "crval3": ("CRVAL3", np.nan), "ctype2": ("CTYPE2", ""),
    "ctype3": ("CTYPE3", ""), "tunit": ("TUNIT7", ""), "vframe": ("VFRAME", np.nan),
    "sitelong": ("SITELONG", np.nan), "sitelat": ("SITELAT", np.nan),
    "siteelev": ("SITEELEV", np.nan), "radesys": ("RADESYS", ""), "equinox": ("EQUINOX", 2000.0),
    "telescop": ("TELESCOP", ""),
}
_TEXT = {"object", "ctype1", "date_obs", "veldef", "ctype2", "ctype3", "tunit", "radesys",
         "telescop"}


def read_rows(hdul: Any, tables: list[int]) -> Rows:
    """The metadata of every row of the SDFITS ``tables`` (HDU indices), no spectra read."""
    parts: dict[str, list[np.ndarray]] = {k: [] for k in FIELDS}
    hdus, rows, nchans = [], [], []
    for index in tables:
        hdu = hdul[index]
        nrow = int(hdu.header["NAXIS2"])
        nchan = int(hdu.columns[_column(hdu, "DATA")].format.repeat)
        hdus.append(np.full(nrow, index))
        rows.append(np.arange(nrow))
        nchans.append(np.full(nrow, nchan))
        unit = (hdu.columns[_column(hdu, "DATA")].unit or hdu.header.get("BUNIT", "") or "")
        for name, (key, default) in FIELDS.items():
            values = _field(hdu, key, nrow, default)
            if values is None:
                raise DatasetError(f"SDFITS table in HDU {index} lacks {key}")
            if name == "tunit" and key not in {n.upper() for n in hdu.columns.names}:
                values = np.full(nrow, unit, dtype=object)
            parts[name].append(values)
    fields = {}
    for name, values in parts.items():
        joined = np.concatenate([np.asarray(v, dtype=object) for v in values])
        if name in _TEXT:
            fields[name] = _strings(joined)
        elif name in ("cal", "sig"):
            fields[name] = _flags(np.concatenate(values))
        elif name in ("scan", "ifnum", "plnum", "fdnum", "intnum", "crval4"):
            fields[name] = joined.astype(np.int64)
        else:
            fields[name] = joined.astype(np.float64)
    return Rows(np.concatenate(hdus), np.concatenate(rows), np.concatenate(nchans), fields)


def _column(hdu: Any, name: str) -> str:
    return next(n for n in hdu.columns.names if n.upper() == name)


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple, np.ndarray)):
        return list(value)
    if isinstance(value, str) and "," in value:
        return [v.strip() for v in value.split(",")]
    return [value]


def _select_value(key: str, value: Any) -> list[Any]:
    values = _as_list(value)
    if key in ("cal", "sig"):
        return [bool(v) if isinstance(v, (bool, np.bool_, int)) else
                str(v).strip().upper() in ("T", "TRUE", "1") for v in values]
    if key == "object":
        return [str(v).strip() for v in values]
    try:
        return [int(v) for v in values]
    except (TypeError, ValueError) as exc:
        raise DatasetError(f"{key}={value!r}: expected an integer or a list of integers") from exc


def _show(values: np.ndarray) -> str:
    uniq = sorted(set(values.tolist()))
    text = ", ".join(("T" if v else "F") if isinstance(v, bool) else str(v) for v in uniq[:12])
    return text + (", ..." if len(uniq) > 12 else "")


def select_rows(rows: Rows, name: str, selection: dict[str, Any]) -> Rows:
    """The rows matching every given selection (``scan=152``, ``cal=False``, ``object='U8091'``,
    lists allowed); an empty result names the values the file has."""
    keep = np.ones(len(rows), bool)
    for key in SELECT_KEYS:
        if selection.get(key) is None:
            continue
        wanted = _select_value(key, selection[key])
        match = np.isin(rows.fields[key], np.array(wanted, dtype=rows.fields[key].dtype))
        if not (keep & match).any():
            have = _show(rows.fields[key][keep])
            raise DatasetError(f"{name}: no rows with {key}={selection[key]!r} among the rows "
                               f"selected so far; they have {key} = {have}")
        keep &= match
    return rows.take(keep)


def stokes_names(rows: Rows) -> np.ndarray:
    """The polarization of each row from ``CRVAL4`` (FITS Stokes codes: -5 XX, -6 YY, -1 RR ...),
    or ``PL<plnum>`` where CRVAL4 is absent or unknown."""
    return np.array([STOKES.get(int(c), f"PL{p}") for c, p in
                     zip(rows.fields["crval4"], rows.fields["plnum"])], dtype=object)


def first_channel_hz(rows: Rows) -> np.ndarray:
    """Frequency (Hz) of channel 0 of each row: ``CRVAL1 + (1 - CRPIX1) CDELT1``."""
    return rows.fields["crval1"] + (1.0 - rows.fields["crpix1"]) * rows.fields["cdelt1"]


def setup_groups(rows: Rows, max_shift_channels: float, mix_states: bool = False) -> np.ndarray:
    """A setup id per row: rows share one when they have the same channel count, channel width,
    spectral window, feed, OBJECT and (unless ``mix_states``) noise-diode and signal states
    (CAL, SIG), and their channel-0 frequencies lie within ``max_shift_channels`` channels of
    the group's first row."""
    f0, cdelt = first_channel_hz(rows), rows.fields["cdelt1"]
    keys: list[tuple[Any, ...]] = []
    starts: list[float] = []
    group = np.empty(len(rows), np.int64)
    for i in range(len(rows)):
        key = (int(rows.nchan[i]), float(cdelt[i]), int(rows.fields["ifnum"][i]),
               int(rows.fields["fdnum"][i]), rows.fields["object"][i])
        if not mix_states:
            key += (bool(rows.fields["cal"][i]), bool(rows.fields["sig"][i]))
        for g, (k, s) in enumerate(zip(keys, starts)):
            if k == key and abs(f0[i] - s) <= max_shift_channels * abs(cdelt[i]):
                group[i] = g
                break
        else:
            keys.append(key)
            starts.append(f0[i])
            group[i] = len(keys) - 1
    return group


def _describe(rows: Rows, groups: np.ndarray) -> tuple[str, str]:
    """A short description of each setup and the selection that separates them."""
    names = []
    for g in np.unique(groups):
        sub = rows.take(groups == g)
        f_mid = (first_channel_hz(sub)[0] + sub.fields["cdelt1"][0] * sub.nchan[0] / 2) / 1e6
        names.append(f"{sub.fields['object'][0] or '?'} scan {_show(sub.fields['scan'])} "
                     f"ifnum {sub.fields['ifnum'][0]} fdnum {sub.fields['fdnum'][0]} "
                     f"cal {_show(sub.fields['cal'])} sig {_show(sub.fields['sig'])} "
                     f"{sub.nchan[0]} ch at {f_mid:.3f} MHz ({len(sub)} rows)")
    hint = _separating_selection(rows, groups)
    return "; ".join(names), hint


def _separating_selection(rows: Rows, groups: np.ndarray) -> str:
    """The ``--read`` selection (fewest of hdu, object, fdnum, ifnum, plnum, scan) that picks
    exactly the first setup's rows."""
    target = groups == groups[0]
    fields = {"hdu": rows.hdu, "object": rows.fields["object"], "fdnum": rows.fields["fdnum"],
              "ifnum": rows.fields["ifnum"], "scan": rows.fields["scan"],
              "cal": rows.fields["cal"], "sig": rows.fields["sig"]}
    chosen: list[str] = []
    picked = np.ones(len(rows), bool)
    for key, field in fields.items():
        values = sorted(set(field[target].tolist()))
        narrowed = picked & np.isin(field, values)
        if narrowed.sum() < picked.sum():
            shown = values[0] if len(values) == 1 else values
            if isinstance(shown, bool):
                shown = "T" if shown else "F"
            chosen.append(f"--read {key}={str(shown).replace(' ', '')}")
            picked = narrowed
        if (picked == target).all():
            return "select one, e.g. " + " ".join(chosen)
    return ("select rows with --read hdu=, scan=, ifnum=, fdnum=, object=, cal= or sig=, or "
            "raise max_shift_channels for Doppler-shifted rows")


def time_axis(rows: Rows) -> tuple[np.ndarray, bool]:
    """UTC datetime64[ns] per row from DATE-OBS (plus TIME seconds when DATE-OBS is a date
    only), else from an MJD column; ``(row numbers, False)`` when the file has no time."""
    from overtone_radio.readers import utc_from_mjd

    dates, mjd = rows.fields["date_obs"], rows.fields["mjd"]
    if all(dates):
        try:
            base = np.array([np.datetime64(d, "ns") for d in dates])
        except ValueError as exc:
            raise DatasetError(f"DATE-OBS {dates[0]!r} is not an ISO date ({exc})") from exc
        seconds = rows.fields["utc_seconds"]
        date_only = np.array(["T" not in d for d in dates])
        if date_only.any() and np.isfinite(seconds[date_only]).all():
            base[date_only] += np.round(seconds[date_only] * 1e9).astype("timedelta64[ns]")
        return base, True
    if np.isfinite(mjd).all():
        return utc_from_mjd(mjd), True
    return np.arange(len(rows), dtype=np.float64), False


def units_of(tunits: np.ndarray, name: str) -> tuple[str, str]:
    """(units, brightness scale) from the per-row TUNIT7 (or the DATA column's unit / BUNIT):
    Ta, Ta*, Tmb ... are kelvin; empty or 'counts' is raw backend counts."""
    unique = sorted(set(tunits.tolist()))
    if len(unique) > 1:
        raise DatasetError(f"{name}: the selected rows have different units {unique} (TUNIT7); "
                           "select calibrated or raw rows only (e.g. by scan or hdu)")
    text = unique[0] if unique else ""
    upper = text.upper()
    if upper in KELVIN_SCALES:
        return "K", "" if upper == "K" else text
    if upper in ("", "COUNTS", "COUNT", "CT", "UNKNOWN"):
        return "counts", ""
    if upper == "JY":
        return "Jy", ""
    return text, ""


def plan_polarizations(rows: Rows, polarization: str | None, name: str
                       ) -> tuple[np.ndarray, list[str], str]:
    """Arrange the selected rows as a (time, npol) matrix of row positions.

    ``polarization``: ``None`` (every polarization present; a dim when there are several),
    one name (``'XX'``, ``'LL'``, ``'PL0'`` ...), several (``'XX,YY'``) or ``'mean'`` (the mean
    of the two polarizations). Returns (plan, polarization names, mode) with mode
    ``'single'``, ``'stack'`` or ``'mean'``.
    """
    pols = stokes_names(rows)
    present = list(dict.fromkeys(pols.tolist()))
    if polarization in (None, ""):
        wanted, mode = present, "stack" if len(present) > 1 else "single"
    elif str(polarization).strip().lower() == "mean":
        if len(present) != 2:
            raise DatasetError(f"{name}: polarization='mean' needs two polarizations; the rows "
                               f"have {', '.join(present)}")
        wanted, mode = present, "mean"
    else:
        wanted = [p.strip().upper() for p in _as_list(polarization)]
        missing = [p for p in wanted if p not in present]
        if missing:
            raise DatasetError(f"{name}: polarization {', '.join(missing)} not in the selected "
                               f"rows; they have {', '.join(present)} (or use 'mean')")
        mode = "stack" if len(wanted) > 1 else "single"
    columns = [np.flatnonzero(pols == p) for p in wanted]
    counts = {p: len(c) for p, c in zip(wanted, columns)}
    if len(set(counts.values())) > 1:
        raise DatasetError(f"{name}: the polarizations have different row counts {counts}; "
                           f"select one, e.g. --read polarization={wanted[0]}")
    plan = np.stack(columns, axis=1)
    if len(wanted) > 1:
        same = ("scan", "cal", "sig", "date_obs", "fdnum", "ifnum")
        for key in same:
            values = rows.fields[key][plan]
            if not (values == values[:, :1]).all():
                raise DatasetError(f"{name}: rows of {' and '.join(wanted)} do not pair up "
                                   f"({key} differs); select one, e.g. --read "
                                   f"polarization={wanted[0]}")
    return plan, wanted, mode


def _read_block(path: str, hdus: np.ndarray, rows: np.ndarray, shifts: np.ndarray | None,
                column: str, mode: str) -> np.ndarray:
    """Read ``column`` of the rows (time, npol) of the FITS file; shift each by ``shifts``
    channels (linear interpolation) when given; 'mean' averages the polarizations."""
    from astropy.io import fits

    out = None
    with fits.open(path, memmap=True, lazy_load_hdus=True) as hdul:
        for h in np.unique(hdus):
            where = np.nonzero(hdus == h)
            wanted = rows[where]
            uniq, inverse = np.unique(wanted, return_inverse=True)
            values = np.asarray(hdul[int(h)].data[column][uniq])
            values = values.reshape(len(uniq), -1)[inverse]
            if out is None:
                out = np.empty((*hdus.shape, values.shape[-1]),
                               np.float32 if column == "DATA" else bool)
            out[where] = values if column == "DATA" else values != 0
    if shifts is not None and column == "DATA":
        channels = np.arange(out.shape[-1], dtype=np.float64)
        for index in np.ndindex(*hdus.shape):
            if shifts[index]:
                out[index] = np.interp(channels - shifts[index], channels, out[index],
                                       left=np.nan, right=np.nan)
    if mode == "mean":
        return out.mean(axis=1, dtype=np.float64).astype(out.dtype) if column == "DATA" \
            else out.any(axis=1)
    return out[:, 0] if mode == "single" else out


def _lazy_rows(path: Path, rows: Rows, plan: np.ndarray, shifts: np.ndarray | None,
               column: str, mode: str, step: int, nchan: int) -> Any:
    import dask
    import dask.array as da

    blocks = []
    npol = plan.shape[1]
    dtype = np.float32 if column == "DATA" else bool
    for start in range(0, plan.shape[0], step):
        part = plan[start:start + step]
        shape = (len(part), nchan) if mode != "stack" else (len(part), npol, nchan)
        d = dask.delayed(_read_block, pure=True)(
            str(path), rows.hdu[part], rows.row[part],
            None if shifts is None else shifts[part], column, mode)
        blocks.append(da.from_delayed(d, shape, dtype))
    return da.concatenate(blocks, axis=0)


def open_sdfits(path: Path, hdul: Any, *, chunks: Any = None, hdu: Any = None,
                polarization: str | None = None, align: str = "tolerate",
                max_shift_channels: float = 0.5, velocity: str | None = "auto",
                mix_states: bool = False, **selection: Any) -> xr.Dataset:
    """Open the chosen rows of an SDFITS file as a spectra Dataset (see the module docstring).

    ``hdu``: FITS HDU index (1 = first extension) or a list of them; default every SDFITS table.
    ``mix_states``: let rows of different CAL/SIG states (noise diode on/off, signal/reference)
    form one time series (the ``cal`` and ``sig`` coordinates tell them apart).
    ``velocity``: ``'auto'`` (the VELDEF convention and frame when RESTFREQ is known),
    ``'radio'``, ``'optical'``, ``'relativistic'`` or ``None`` (no velocity coordinate).
    """
    from overtone_radio.readers import _time_chunks

    name = path.name
    tables = [i for i, h in enumerate(hdul) if is_sdfits_table(h)]
    if hdu is not None:
        asked = [int(h) for h in _as_list(hdu)]
        bad = [h for h in asked if h not in tables]
        if bad:
            raise DatasetError(f"{name}: HDU {bad[0]} is not an SDFITS table; the SDFITS tables "
                               f"are HDU {', '.join(map(str, tables))}")
        tables = asked
    if align not in ("tolerate", "regrid"):
        raise DatasetError(f"align={align!r}; use 'tolerate' or 'regrid'")
    rows = select_rows(read_rows(hdul, tables), name, selection)
    groups = setup_groups(rows, float(max_shift_channels), bool(mix_states))
    if len(np.unique(groups)) > 1:
        described, hint = _describe(rows, groups)
        raise DatasetError(f"{name}: the selected rows are {len(np.unique(groups))} setups that "
                           f"cannot be one time series ({described}); {hint}")
    plan, pols, mode = plan_polarizations(rows, polarization, name)
    nchan = int(rows.nchan[0])
    f0 = first_channel_hz(rows)
    cdelt = float(rows.fields["cdelt1"][0])
    ref = int(plan[0, 0])
    offsets = (f0 - f0[ref]) / cdelt  # channels
    shifts = offsets[plan] if align == "regrid" and np.any(offsets) else None
    step = _time_chunks(plan.shape[0], chunks)
    values = _lazy_rows(path, rows, plan, shifts, "DATA", mode, step, nchan)
    pdims = ("polarization",) if mode == "stack" else ()
    units, scale = units_of(rows.fields["tunit"], name)
    attrs = {"units": units}
    if scale:
        attrs["brightness_scale"] = scale
    variables: dict[str, Any] = {"spectrum": (("time", *pdims, "frequency"), values, attrs)}
    if any("FLAGS" == n.upper() for t in tables for n in hdul[t].columns.names):
        flagged = [t for t in tables if "FLAGS" in {n.upper() for n in hdul[t].columns.names}]
        if set(np.unique(rows.hdu)) <= set(flagged):
            variables["flag"] = (("time", *pdims, "frequency"),
                                 _lazy_rows(path, rows, plan, None, "FLAGS", mode, step, nchan),
                                 {"long_name": "dysh FLAGS (channel flagged)"})
    per_row = plan if mode == "stack" else plan[:, 0]
    dims_row = ("time", *pdims)

    def row_var(key: str, unit: str, long_name: str) -> tuple[Any, ...]:
        data = rows.fields[key][per_row]
        if mode == "mean":
            data = rows.fields[key][plan].mean(axis=1)
        return (dims_row if mode == "stack" else ("time",), data,
                {"units": unit, "long_name": long_name})

    variables["tsys"] = row_var("tsys", "K", "system temperature (TSYS)")
    variables["exposure"] = row_var("exposure", "s", "effective integration time (EXPOSURE)")
    first = rows.take(plan[:, 0])
    time, timed = time_axis(first)
    coords = _row_coords(first, time, timed, offsets[plan[:, 0]], shifts is not None)
    coords["frequency"] = ("frequency", (f0[ref] + cdelt * np.arange(nchan)) / 1e6,
                           {"units": "MHz", "long_name": f"{rows.fields['ctype1'][ref]} frequency"})
    if mode == "stack":
        coords["polarization"] = ("polarization", pols)
        coords["plnum"] = ("polarization", rows.fields["plnum"][plan[0]])
    else:
        coords["plnum"] = ("time", first.fields["plnum"])
    telescope = first.fields["telescop"][0]
    attrs_ds = {"source_file": name, "format": "SDFITS", "telescope": telescope,
                "sdfits_hdu": ",".join(map(str, sorted(set(first.hdu.tolist())))),
                "align": align, "max_shift_channels": float(max_shift_channels)}
    if mode == "mean":
        attrs_ds["polarization"] = f"mean of {' and '.join(pols)}"
    elif mode == "single":
        attrs_ds["polarization"] = pols[0]
    ds = xr.Dataset(variables, coords=coords, attrs=attrs_ds)
    return attach_velocity(ds, rows, ref, velocity, time[0] if timed else None)


def _row_coords(first: Rows, time: np.ndarray, timed: bool, offsets: np.ndarray,
                regridded: bool) -> dict[str, Any]:
    """The coordinates along ``time`` of the rows ``first`` (one per time step)."""
    from overtone_radio.readers import MJD_EPOCH

    fields = first.fields
    coords: dict[str, Any] = {}
    if timed:
        coords["time"] = ("time", time, {"long_name": "UTC (DATE-OBS)"})
        coords["mjd"] = ("time", (time - MJD_EPOCH) / np.timedelta64(86400, "s"), {"units": "d"})
    else:
        coords["time"] = ("time", time, {"units": "1", "long_name": "row (no DATE-OBS or MJD)"})
    for key in ("object", "veldef"):
        coords[key] = ("time", fields[key].astype(str))
    for key in ("scan", "intnum", "ifnum", "fdnum"):
        coords[key] = ("time", fields[key])
    coords["cal"] = ("time", fields["cal"], {"long_name": "noise diode on (CAL)"})
    coords["sig"] = ("time", fields["sig"], {"long_name": "signal state (SIG)"})
    coords["restfreq"] = ("time", fields["restfreq"] / 1e6, {"units": "MHz"})
    coords["hdu"] = ("time", first.hdu)
    coords["row"] = ("time", first.row, {"long_name": "row in its HDU"})
    coords["channel_offset"] = ("time", offsets, {
        "units": "channel", "long_name": "channel-0 frequency offset from the frequency "
        "coordinate" + (" (regridded away)" if regridded else "")})
    for key, axis in (("crval2", "ctype2"), ("crval3", "ctype3")):
        label = (fields[axis][0] or key).lower().split("-")[0]
        coords[label] = ("time", fields[key], {"units": "deg",
                                               "long_name": f"{key.upper()} ({fields[axis][0]})"})
    return coords


def attach_velocity(ds: xr.Dataset, rows: Rows, ref: int, velocity: str | None,
                    when: np.datetime64 | None) -> xr.Dataset:
    """Add ``velocity`` (km/s) along frequency from RESTFREQ and VELDEF of row ``ref`` (see
    velocity.py): a topocentric axis is moved into the VELDEF frame at UTC ``when`` (left
    topocentric when the time, site or RA/Dec target is unknown)."""
    from overtone_radio.velocity import parse_veldef, to_frame, with_velocity

    if velocity is None or str(velocity).lower() in ("none", "off", "false"):
        return ds
    rest = rows.fields["restfreq"]
    if not np.isfinite(rest[ref]) or rest[ref] <= 0:
        return ds
    if np.ptp(rest) > 0:
        return ds  # several rest frequencies: no single velocity axis
    veldef = rows.fields["veldef"][ref]
    convention, frame = parse_veldef(veldef) if veldef else ("radio", None)
    if velocity != "auto":
        convention = str(velocity)
    freq_hz = ds["frequency"].values * 1e6
    ctype = rows.fields["ctype1"][ref].upper()
    topocentric = ctype.endswith("-OBS") or ctype.endswith("-TOP") or ctype == "FREQ"
    site = tuple(float(rows.fields[k][ref]) for k in ("sitelong", "sitelat", "siteelev"))
    target = (float(rows.fields["crval2"][ref]), float(rows.fields["crval3"][ref]))
    frame_name = "topocentric"
    if frame is not None and topocentric:
        known = when is not None and np.isfinite(site).all() and np.isfinite(target).all() and \
            rows.fields["ctype2"][ref].upper().startswith("RA")
        if known:
            freq_hz = to_frame(freq_hz, frame, time=str(when), site=site,
                               target=target, radesys=rows.fields["radesys"][ref],
                               equinox=float(rows.fields["equinox"][ref]))
            frame_name = veldef.split("-", 1)[1]
    elif frame is not None:
        frame_name = veldef.split("-", 1)[1]
    return with_velocity(ds, float(rest[ref]), convention, frame=frame_name, freq_hz=freq_hz)
