"""The spectra data model: checks and helpers shared by every processor.

A spectra Dataset has a ``frequency`` dimension (any other dims, usually ``time`` and
optionally ``beam``/``polarization``, are independent spectra), a data variable (kelvin, or
raw counts), a ``frequency`` coordinate with a ``units`` attribute (any astropy frequency unit;
MHz by convention), and optional boolean variables ``source_mask`` (channels to protect) and
``flag`` (bad channels), each broadcastable against the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr
from overtone import ConfigError, DatasetError

#: Names tried, in order, when a processor is not told which variable holds the spectra.
PREFERRED = ("spectrum", "T", "Ta", "flux", "power", "DATA")
SOURCE_MASK = "source_mask"
#: Galactic HI around 1420.406 MHz (+-200 km/s), protected by default like HiFAST does.
MILKY_WAY_MHZ = ((1419.4, 1421.4),)
FLAG = "flag"


@dataclass(frozen=True)
class FrequencyAxis:
    """A uniform frequency axis: ``n`` channels, signed step ``step_mhz``, values in MHz."""

    values_mhz: np.ndarray
    step_mhz: float

    @property
    def n(self) -> int:
        return int(self.values_mhz.size)

    @property
    def width_mhz(self) -> float:
        """Channel width |dnu| in MHz."""
        return abs(self.step_mhz)

    def delays_us(self) -> np.ndarray:
        """Delay axis of an rfft along frequency: tau = rfftfreq(n, |dnu|) in microseconds."""
        return np.fft.rfftfreq(self.n, self.width_mhz)


def pick_variable(ds: xr.Dataset, variable: str | None) -> str:
    """Name of the variable holding spectra: ``variable`` if given, else the usual names, else
    the only floating-point variable with a ``frequency`` dim."""
    if not isinstance(ds, xr.Dataset):
        raise DatasetError(f"expected an xarray.Dataset of spectra, got {type(ds).__name__}")
    if variable is not None:
        if variable not in ds.data_vars:
            raise DatasetError(f"variable {variable!r} not in the dataset; variables: "
                               f"{', '.join(map(str, ds.data_vars)) or '(none)'}")
        name = variable
    else:
        candidates = [str(k) for k, v in ds.data_vars.items()
                      if "frequency" in v.dims and np.issubdtype(v.dtype, np.floating)]
        preferred = [p for p in PREFERRED if p in candidates]
        if preferred:
            name = preferred[0]
        elif len(candidates) == 1:
            name = candidates[0]
        elif not candidates:
            dims = {str(d) for v in ds.data_vars.values() for d in v.dims}
            raise DatasetError(
                "no floating-point variable with a 'frequency' dimension; dims found: "
                f"{', '.join(sorted(dims)) or '(none)'} (rename the channel dim, e.g. "
                "ds.rename(chan='frequency'))")
        else:
            raise DatasetError(f"several spectra variables ({', '.join(candidates)}); "
                               "name one with variable=")
    if "frequency" not in ds[name].dims:
        raise DatasetError(f"variable {name!r} has dims {ds[name].dims}; expected a 'frequency' "
                           "dimension (rename the channel dim, e.g. ds.rename(chan='frequency'))")
    return name


def frequency_axis(ds: xr.Dataset, *, uniform: bool = True) -> FrequencyAxis:
    """The ``frequency`` coordinate in MHz, checked for units, NaN and (if ``uniform``) a
    constant step within 5% of a channel. A decreasing axis is allowed (negative step)."""
    import astropy.units as u

    if "frequency" not in ds.coords:
        raise DatasetError("the dataset has no 'frequency' coordinate; add one in MHz, e.g. "
                           "ds.assign_coords(frequency=('frequency', f_mhz, {'units': 'MHz'}))")
    coord = ds["frequency"]
    units = coord.attrs.get("units")
    if not units:
        raise DatasetError("the 'frequency' coordinate has no 'units' attribute; set it, e.g. "
                           "ds.frequency.attrs['units'] = 'MHz'")
    try:
        scale = u.Unit(units).to(u.MHz)
    except (ValueError, u.UnitConversionError) as exc:
        raise DatasetError(f"the 'frequency' coordinate has units {units!r}, not a frequency "
                           f"unit ({exc}); use 'MHz', 'GHz', 'kHz' or 'Hz'") from exc
    values = np.asarray(coord.values, dtype=np.float64) * scale
    if values.size < 8:
        raise DatasetError(f"only {values.size} frequency channels; need at least 8")
    if not np.all(np.isfinite(values)):
        raise DatasetError("the 'frequency' coordinate has NaN or infinite values")
    steps = np.diff(values)
    step = float(np.median(steps))
    if step == 0 or np.any(np.sign(steps) != np.sign(step)):
        raise DatasetError("the 'frequency' coordinate is not monotonic; sort it "
                           "(ds.sortby('frequency'))")
    if uniform:
        fit = values[0] + step * np.arange(values.size)
        worst = float(np.max(np.abs(values - fit))) / abs(step)
        if worst > 0.05:
            raise DatasetError(
                f"the frequency axis is not uniform (off a constant step of {step:.6g} MHz by up "
                f"to {worst:.3g} channels); the FFT needs a uniform grid: interpolate onto one "
                "(ds.interp(frequency=...)) or process each uniform piece separately")
        step = float((values[-1] - values[0]) / (values.size - 1))
    return FrequencyAxis(values, step)


def optional_mask(ds: xr.Dataset, name: str, data: xr.DataArray) -> xr.DataArray | None:
    """The boolean variable ``name`` broadcast against ``data`` (``None`` if absent)."""
    if name not in ds.variables:
        return None
    mask = ds[name]
    if mask.dtype != bool:
        raise DatasetError(f"{name!r} must be boolean (True = {name.replace('_', ' ')}), "
                           f"got dtype {mask.dtype}")
    extra = set(mask.dims) - set(data.dims)
    if extra:
        raise DatasetError(f"{name!r} has dims {mask.dims} that the data ({data.dims}) lacks")
    return mask


def exposure_seconds(ds: xr.Dataset, data: xr.DataArray, given: float | None) -> xr.DataArray:
    """Integration time per spectrum in seconds: ``given``, else an ``exposure`` variable or
    coordinate (units s), else ``attrs['exposure']``."""
    if given is not None:
        if given <= 0:
            raise DatasetError(f"exposure = {given} s; it must be positive")
        return xr.DataArray(float(given))
    if "exposure" in ds.variables:
        exp = ds["exposure"]
        unit = exp.attrs.get("units", "s")
        if unit not in ("s", "second", "seconds", "sec"):
            raise DatasetError(f"'exposure' has units {unit!r}; expected seconds ('s')")
        return exp.astype(np.float64)
    if "exposure" in ds.attrs:
        return xr.DataArray(float(ds.attrs["exposure"]))
    raise DatasetError("no integration time: add an 'exposure' variable (s, per spectrum) or "
                       "attrs['exposure'], or pass exposure=<seconds>")


def _pair(item: Any, name: str, unit: str, minimum: float | None, example: str) -> tuple[float, float]:
    """One [low, high] pair of numbers with low < high (and minimum <= low when given), else a
    one-line ConfigError naming ``name``."""
    if not isinstance(item, (list, tuple, np.ndarray)) or len(item) != 2:
        raise ConfigError(f"{name}: {item!r} is not a pair [low, high] in {unit}, e.g. {example}")
    try:
        lo, hi = float(item[0]), float(item[1])
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: {list(item)} is not two numbers [low, high] in {unit}") from None
    if not lo < hi or (minimum is not None and not lo >= minimum):
        floor = f"{minimum:g} <= " if minimum is not None else ""
        raise ConfigError(f"{name}: {list(item)} needs {floor}low < high ({unit})")
    return lo, hi


def check_pair(value: Any, name: str, unit: str, *, minimum: float = 0.0) -> tuple[float, float]:
    """A [low, high] pair with ``minimum <= low < high``, else a one-line ConfigError.

    Through ``create()``, a config or ``--param`` the declared ``Param(items=float, length=2,
    min=...)`` has checked the shape and the bound already; this is the check for direct
    Python use of the classes, shared with :func:`check_pairs`."""
    return _pair(value, name, unit, minimum, "[5, 50]")


def check_pairs(value: Any, name: str, unit: str, *, minimum: float | None = None,
                at_least_one: bool = False) -> list[tuple[float, float]]:
    """A list of [low, high] pairs (``low < high``, and ``minimum <= low`` when given), else a
    one-line ConfigError; ``at_least_one``: the list may not be empty. The one check behind
    every list-of-pairs parameter (protect/exclude ranges in MHz, delay windows in us) for
    direct Python use; through ``create()`` the declared ``Param(items=Param(length=2))`` has
    checked the shape already."""
    example = "[[1397, 1402]]" if unit == "MHz" else "[[0.88, 0.97]]"
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{name} = {value!r}; give a list of [low, high] pairs in {unit}, "
                          f"e.g. {example}")
    out = [_pair(item, name, unit, minimum, example) for item in value]
    if at_least_one and not out:
        raise ConfigError(f"{name}: give at least one pair [low, high] in {unit}, e.g. {example}")
    return out


def record(ds: xr.Dataset, name: str, version: str, params: dict[str, Any]) -> None:
    """Append what a processor did to ``ds.attrs['history']`` (the run schema's provenance
    convention, :func:`overtone.runschema.add_history`): name, version and parameters."""
    from overtone.runschema import add_history

    add_history(ds, {"component": name, "kind": "signal_processor", "plugin": "overtone-radio",
                     "version": version, "params": params})


def batch_dims(data: xr.DataArray) -> list[str]:
    """Every dim of ``data`` except ``frequency`` (each index along them is one spectrum)."""
    return [str(d) for d in data.dims if d != "frequency"]


def frequency_chunked_once(data: xr.DataArray) -> xr.DataArray:
    """``data`` with the whole band in one chunk (dask), needed by per-spectrum transforms."""
    if data.chunks is not None:
        axis = data.get_axis_num("frequency")
        if len(data.chunks[axis]) > 1:
            return data.chunk({"frequency": -1})
    return data


def protection_masks(ds: xr.Dataset, data: xr.DataArray, axis: FrequencyAxis,
                     ranges_mhz: list | tuple = ()) -> tuple[xr.DataArray | None, np.ndarray | None]:
    """The protected channels in two parts that OR together to ``source_mask | flag |
    channels inside any of ranges_mhz``: the part that varies between spectra (broadcast and
    chunked like ``data``) and a (frequency,) part shared by every spectrum; each ``None``
    when empty. Kept apart, the shared part is never broadcast over the spectra."""
    channels = np.zeros(axis.n, bool)
    for lo, hi in check_pairs(ranges_mhz, "protect_ranges_mhz", "MHz"):
        channels |= (axis.values_mhz >= lo) & (axis.values_mhz <= hi)
    varying = None
    for m in (optional_mask(ds, SOURCE_MASK, data), optional_mask(ds, FLAG, data)):
        if m is None:
            continue
        if m.dims == ("frequency",):
            channels |= np.asarray(m.values, bool)
        else:
            varying = m if varying is None else varying | m
    if varying is not None:
        varying = varying.broadcast_like(data).transpose(*data.dims)
        if data.chunks is not None:
            varying = varying.chunk(dict(zip(data.dims, data.chunks)))
    return varying, (channels if channels.any() else None)


def protection_mask(ds: xr.Dataset, data: xr.DataArray, axis: FrequencyAxis,
                    ranges_mhz: list | tuple = ()) -> xr.DataArray | None:
    """``source_mask | flag | channels inside any of ranges_mhz`` broadcast (and chunked)
    like ``data``, or one (frequency,) mask when none varies between spectra (apply_ufunc
    then broadcasts it with stride 0); ``None`` when nothing is protected."""
    varying, channels = protection_masks(ds, data, axis, ranges_mhz)
    if varying is None:
        if channels is None:
            return None
        shared = xr.DataArray(channels, dims="frequency")
        return shared.chunk({"frequency": -1}) if data.chunks is not None else shared
    return varying if channels is None else varying | xr.DataArray(channels, dims="frequency")
