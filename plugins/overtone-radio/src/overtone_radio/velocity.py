"""Velocity axes of spectra: Doppler conventions and rest frames through astropy.

A frequency ``f`` with rest frequency ``f0`` has the velocity (c = speed of light)

* radio: ``v = c (f0 - f) / f0``
* optical: ``v = c (f0 - f) / f``
* relativistic: ``v = c (f0^2 - f^2) / (f0^2 + f^2)``

computed by :class:`astropy.coordinates.SpectralCoord`. GBT's ``VELDEF`` (``OPTI-LSR``,
``RADI-HEL``, ``VELO-BAR`` ...) names the convention (first four letters) and the frame (after
the dash); a topocentric frequency axis (``FREQ-OBS``) is moved into that frame with
``SpectralCoord.with_observer_stationary_relative_to`` when the time, the telescope site and the
target direction are known.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import xarray as xr
from overtone import DatasetError

CONVENTIONS = {"RADI": "radio", "OPTI": "optical", "RELA": "relativistic", "VELO": "relativistic",
               "TRUE": "relativistic"}
# VELDEF frame suffix -> astropy frame name (None: topocentric, no change)
FRAMES = {"LSR": "lsrk", "LSRK": "lsrk", "LSD": "lsrd", "LSRD": "lsrd", "HEL": "hcrs",
          "BAR": "icrs", "GEO": "gcrs", "GAL": "galactocentric", "TOP": None, "TOPO": None,
          "OBS": None}


def parse_veldef(veldef: str) -> tuple[str, str | None]:
    """(convention, astropy frame name or None for topocentric) of a VELDEF like ``OPTI-LSR``."""
    text = str(veldef).strip().upper()
    head, _, tail = text.partition("-")
    if head[:4] not in CONVENTIONS or tail not in FRAMES:
        raise DatasetError(f"VELDEF {veldef!r} is not CONV-FRAME with CONV in "
                           f"{sorted(CONVENTIONS)} and FRAME in {sorted(FRAMES)}")
    return CONVENTIONS[head[:4]], FRAMES[tail]


def doppler_velocity(freq_hz: Any, rest_hz: float, convention: str = "radio") -> np.ndarray:
    """Velocity (km/s) of frequencies ``freq_hz`` for rest frequency ``rest_hz`` in a Doppler
    ``convention`` ('radio', 'optical' or 'relativistic'), via astropy's SpectralCoord."""
    import astropy.units as u
    from astropy.coordinates import SpectralCoord

    if convention not in ("radio", "optical", "relativistic"):
        raise DatasetError(f"velocity convention {convention!r}; use 'radio', 'optical' or "
                           "'relativistic'")
    if not np.isfinite(rest_hz) or rest_hz <= 0:
        raise DatasetError(f"rest frequency {rest_hz!r} Hz is not positive; give rest_frequency")
    coord = SpectralCoord(np.asarray(freq_hz, np.float64) * u.Hz, doppler_rest=rest_hz * u.Hz,
                          doppler_convention=convention)
    return coord.to_value(u.km / u.s)


def frequency_from_velocity(velocity_kms: Any, rest_hz: float, convention: str) -> np.ndarray:
    """Frequency (Hz) of velocities (km/s): the inverse of :func:`doppler_velocity`."""
    import astropy.units as u

    equiv = {"radio": u.doppler_radio, "optical": u.doppler_optical,
             "relativistic": u.doppler_relativistic}[convention](rest_hz * u.Hz)
    return (np.asarray(velocity_kms, np.float64) * u.km / u.s).to_value(u.Hz, equivalencies=equiv)


def to_frame(freq_hz: Any, frame: str, *, time: Any, site: tuple[float, float, float],
             target: tuple[float, float], radesys: str = "ICRS", equinox: float = 2000.0
             ) -> np.ndarray:
    """Topocentric frequencies (Hz) seen by an observer at rest in astropy ``frame``.

    ``time`` is UTC (anything astropy Time takes), ``site`` is (longitude deg east, latitude deg,
    height m), ``target`` is (RA, Dec) in degrees in ``radesys`` (ICRS, FK5 or FK4, with
    ``equinox`` in years: GBT files of 2004 give B1950 positions). The observer's velocity along
    the line of sight is what GBT writes as ``VFRAME``.
    """
    import astropy.units as u
    from astropy.coordinates import EarthLocation, SpectralCoord
    from astropy.coordinates.spectral_coordinate import NoDistanceWarning, NoVelocityWarning
    from astropy.time import Time

    obstime = Time(time, scale="utc")
    location = EarthLocation.from_geodetic(site[0] * u.deg, site[1] * u.deg, site[2] * u.m)
    with warnings.catch_warnings():  # runs once at open time, in the caller's thread
        # the target's distance and own velocity do not enter an observer-frame change
        warnings.simplefilter("ignore", NoVelocityWarning)
        warnings.simplefilter("ignore", NoDistanceWarning)
        coord = SpectralCoord(np.asarray(freq_hz, np.float64) * u.Hz,
                              observer=location.get_itrs(obstime=obstime),
                              target=_target(target, radesys, equinox, obstime))
        return coord.with_observer_stationary_relative_to(frame).to_value(u.Hz)


def _target(radec: tuple[float, float], radesys: str, equinox: float, obstime: Any) -> Any:
    import astropy.units as u
    from astropy.coordinates import FK4, FK5, ICRS, SkyCoord

    system = str(radesys).strip().upper() or ("FK4" if equinox < 1984 else "FK5")
    frames = {"ICRS": ICRS(), "FK5": FK5(equinox=f"J{equinox:.1f}"),
              "FK4": FK4(equinox=f"B{equinox:.1f}", obstime=obstime)}
    if system not in frames:
        raise DatasetError(f"RADESYS {radesys!r}; this reader knows ICRS, FK5 and FK4")
    return SkyCoord(radec[0] * u.deg, radec[1] * u.deg, frame=frames[system]).icrs


def with_velocity(ds: xr.Dataset, rest_hz: float, convention: str, *, frame: str | None = None,
                  freq_hz: Any = None, dim: str = "frequency") -> xr.Dataset:
    """``ds`` with a ``velocity`` coordinate (km/s) along ``dim``: the Doppler velocity of the
    frequencies (``freq_hz``, default the ``frequency`` coordinate in MHz) for ``rest_hz``."""
    if freq_hz is None:
        freq_hz = np.asarray(ds[dim].values, np.float64) * 1e6
    velocity = doppler_velocity(freq_hz, rest_hz, convention)
    attrs = {"units": "km/s", "long_name": f"{convention} velocity",
             "doppler_convention": convention, "rest_frequency_hz": float(rest_hz),
             "frame": frame or "topocentric"}
    return ds.assign_coords(velocity=(dim, velocity, attrs))
