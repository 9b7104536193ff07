"""FAST-like observations with known truth, generated lazily (dask), and a FAST FITS writer.

Model, per polarization p, spectrum t (time t * dt) and channel frequency nu (MHz):

    T(t, nu) = Tsys(nu) + ripple(t, nu) + sources(t, nu) + rfi(nu) + noise
    Tsys(nu) = tsys * (1 + 0.05 x - 0.04 x^2),  x = 2 (nu - nu_mid) / bandwidth
    ripple   = A(t) [cos(2 pi nu / P + phi(t)) + h cos(4 pi nu / P + 2 phi(t) + 1)]
    A(t)     = A0 (1 + 0.3 sin(2 pi t / T_A)),  phi(t) = phi0 + 1.8 deg/s * t

with P = 1.09 MHz, A0 = 80 mK, h = 0.25 and T_A chosen so A(t) changes by at most 6 mK in
10 s while the phase moves 18 deg in 10 s (the drift reported in arXiv 2411.13016).
Sources are Gaussian lines (frequency) that transit the beam (Gaussian in time), plus a Milky
Way line at 1420.406 MHz in every spectrum. Harmonic RFI is a comb of narrow Gaussian spikes
nu_k = nu_0 + k P_rfi with periods 8.1, 0.5 and 0.37 MHz and heights 120-300 mK. Noise follows
the radiometer equation: sigma = Tsys(nu) / sqrt(dnu dt) per polarization. Each spectrum's
noise comes from its own seeded generator, so any chunking gives the same numbers.

CLI: ``python -m overtone_radio.simulate -o obs.fits --seconds 60`` (also ``.nc``/``.zarr``).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import xarray as xr

FAST_CHANNEL_MHZ = 500.0 / 65536  # 7.62939453125 kHz
MJD_START = 60000.5


@dataclass(frozen=True)
class Source:
    """A Gaussian line: centre and FWHM in MHz, peak in K, transit time and FWHM in s
    (``transit_s=None``: present in every spectrum)."""

    freq_mhz: float
    peak_k: float
    fwhm_mhz: float
    transit_s: float | None = None
    duration_s: float = 20.0


@dataclass(frozen=True)
class Comb:
    """Harmonic RFI: spikes of ``height_k`` every ``period_mhz`` from ``start_mhz`` to ``stop_mhz``."""

    period_mhz: float
    height_k: float
    start_mhz: float
    stop_mhz: float
    width_ch: float = 1.0


DEFAULT_COMBS = (Comb(8.1, 0.15, 1003.7, 1500.0), Comb(0.5, 0.12, 1150.2, 1185.0),
                 Comb(0.37, 0.2, 1250.1, 1270.0))


@dataclass(frozen=True)
class Observation:
    """Parameters of a simulated observation (see the module docstring)."""

    n_time: int = 60
    dt_s: float = 1.0
    nchan: int = 65536
    f_start_mhz: float = 1000.0
    channel_mhz: float = FAST_CHANNEL_MHZ
    tsys_k: float = 20.0
    ripple_period_mhz: float = 1.09
    ripple_amplitude_k: float = 0.08
    ripple_harmonic: float = 0.25
    phase_rate_deg_s: float = 1.8
    amplitude_rate_k_s: float = 0.0006
    npol: int = 1
    seed: int = 0
    sources: tuple[Source, ...] | None = None
    combs: tuple[Comb, ...] = DEFAULT_COMBS
    include: tuple[str, ...] = ("ripple", "sources", "rfi", "noise")
    mask_fraction: float = 0.01

    def frequencies(self) -> np.ndarray:
        return self.f_start_mhz + self.channel_mhz * np.arange(self.nchan)

    def source_list(self) -> tuple[Source, ...]:
        if self.sources is not None:
            return self.sources
        span = self.n_time * self.dt_s
        lo, hi = self.f_start_mhz, self.f_start_mhz + self.nchan * self.channel_mhz
        width = hi - lo
        picks = [Source(1420.406, 3.0, 0.15)]
        for i, frac in enumerate((0.2, 0.45, 0.7, 0.9)):
            picks.append(Source(lo + frac * width + 0.137 * i, 0.3 + 0.1 * i, 0.8,
                                transit_s=span * (0.2 + 0.2 * i), duration_s=max(20.0, span / 6)))
        return tuple(s for s in picks if lo + 2 < s.freq_mhz < hi - 2)


def _gauss(x: np.ndarray, fwhm: float) -> np.ndarray:
    return np.exp(-4 * np.log(2) * (x / fwhm) ** 2)


def bandpass(obs: Observation) -> np.ndarray:
    """Tsys(nu) in K (float64, one value per channel)."""
    f = obs.frequencies()
    x = 2 * (f - f.mean()) / (f[-1] - f[0])
    return obs.tsys_k * (1 + 0.05 * x - 0.04 * x**2)


def ripple_params(obs: Observation, t_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Amplitude A(t) (K) and phase phi(t) (rad) of the standing wave at times ``t_s``."""
    depth = 0.3
    period = 2 * np.pi * depth * obs.ripple_amplitude_k / obs.amplitude_rate_k_s
    amp = obs.ripple_amplitude_k * (1 + depth * np.sin(2 * np.pi * t_s / period))
    phase = 0.7 + np.deg2rad(obs.phase_rate_deg_s) * t_s
    return amp, phase


def ripple(obs: Observation, t_s: np.ndarray) -> np.ndarray:
    """The standing wave (len(t_s), nchan) in K."""
    amp, phase = ripple_params(obs, t_s)
    arg = 2 * np.pi * obs.frequencies()[None, :] / obs.ripple_period_mhz + phase[:, None]
    return amp[:, None] * (np.cos(arg) + obs.ripple_harmonic * np.cos(2 * arg + 1.0))


def sources(obs: Observation, t_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Injected lines (len(t_s), nchan) in K, and the mask of channels above
    ``mask_fraction`` of each source's peak (the ``source_mask`` a user would supply)."""
    f = obs.frequencies()
    total = np.zeros((t_s.size, f.size))
    mask = np.zeros((t_s.size, f.size), bool)
    for s in obs.source_list():
        spec = _gauss(f - s.freq_mhz, s.fwhm_mhz)
        time = np.ones(t_s.size) if s.transit_s is None else _gauss(t_s - s.transit_s, s.duration_s)
        profile = s.peak_k * time[:, None] * spec[None, :]
        total += profile
        mask |= profile > obs.mask_fraction * s.peak_k
    return total, mask


def rfi(obs: Observation) -> np.ndarray:
    """Harmonic RFI (nchan,) in K: the sum of every comb."""
    f = obs.frequencies()
    total = np.zeros(f.size)
    for c in obs.combs:
        centres = np.arange(c.start_mhz, c.stop_mhz + 1e-9, c.period_mhz)
        centres = centres[(centres > f[0]) & (centres < f[-1])]
        sigma = c.width_ch * obs.channel_mhz
        for nu in centres:
            lo, hi = np.searchsorted(f, [nu - 6 * sigma, nu + 6 * sigma])
            total[lo:hi] += c.height_k * np.exp(-0.5 * ((f[lo:hi] - nu) / sigma) ** 2)
    return total


def block(obs: Observation, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """Spectra ``start:stop`` as float32 (n, npol, nchan) and their source mask (n, nchan)."""
    t_s = np.arange(start, stop) * obs.dt_s
    base = bandpass(obs)
    model = np.broadcast_to(base, (t_s.size, obs.nchan)).copy()
    if "ripple" in obs.include:
        model += ripple(obs, t_s)
    src, mask = sources(obs, t_s)
    if "sources" in obs.include:
        model += src
    if "rfi" in obs.include:
        model += rfi(obs)
    out = np.empty((t_s.size, obs.npol, obs.nchan), np.float32)
    sigma = (base / np.sqrt(obs.channel_mhz * 1e6 * obs.dt_s)).astype(np.float32)
    for i, t in enumerate(range(start, stop)):
        for p in range(obs.npol):
            out[i, p] = model[i]
            if "noise" in obs.include:
                rng = np.random.default_rng([obs.seed, p, t])
                out[i, p] += sigma * rng.standard_normal(obs.nchan, dtype=np.float32)
    return out, mask


def simulate(obs: Observation | None = None, *, chunks: int = 256, **kwargs) -> xr.Dataset:
    """A lazy (dask) Dataset of a simulated observation: ``spectrum`` (time[, polarization],
    frequency) in K, ``source_mask`` (time, frequency), ``exposure`` (time) in s; the truth
    (ripple, sources, combs) is in ``attrs['truth']`` as JSON. Keyword arguments override
    :class:`Observation` fields."""
    import dask
    import dask.array as da

    obs = Observation(**kwargs) if obs is None else obs
    if obs.npol not in (1, 2):
        raise ValueError(f"npol = {obs.npol}; use 1 or 2")
    if chunks < 1:
        raise ValueError(f"chunks = {chunks}; it must be at least 1")
    spectra, masks = [], []
    for start in range(0, obs.n_time, chunks):
        stop = min(start + chunks, obs.n_time)
        delayed = dask.delayed(block, nout=2, pure=True)(obs, start, stop)
        spectra.append(da.from_delayed(delayed[0], (stop - start, obs.npol, obs.nchan), np.float32))
        masks.append(da.from_delayed(delayed[1], (stop - start, obs.nchan), bool))
    data = da.concatenate(spectra, axis=0)
    mask = da.concatenate(masks, axis=0)
    t_s = np.arange(obs.n_time) * obs.dt_s
    coords = {
        "time": ("time", t_s, {"units": "s", "long_name": "time since the start"}),
        "frequency": ("frequency", obs.frequencies(), {"units": "MHz", "long_name": "sky frequency"}),
        "mjd": ("time", MJD_START + t_s / 86400, {"units": "d", "long_name": "MJD (UTC)"}),
    }
    if obs.npol == 2:
        coords["polarization"] = ("polarization", ["XX", "YY"])
        dims, values = ("time", "polarization", "frequency"), data
    else:
        dims, values = ("time", "frequency"), data[:, 0, :]
    truth = {"observation": {k: v for k, v in asdict(obs).items() if k not in ("sources", "combs")},
             "sources": [asdict(s) for s in obs.source_list()],
             "combs": [asdict(c) for c in obs.combs]}
    return xr.Dataset(
        {
            "spectrum": (dims, values, {"units": "K", "long_name": "antenna temperature"}),
            "source_mask": (("time", "frequency"), mask,
                            {"long_name": "channels holding injected emission (protect)"}),
            "exposure": ("time", np.full(obs.n_time, obs.dt_s), {"units": "s"}),
        },
        coords=coords,
        attrs={"title": "simulated FAST-like observation (overtone_radio.simulate)",
               "telescope": "FAST (simulated)", "tsys": obs.tsys_k, "truth": json.dumps(truth)},
    )


def write_fast_fits(ds: xr.Dataset, path: str | Path, variable: str = "spectrum") -> Path:
    """Write spectra as a FAST raw FITS file: binary table HDU 1 with ``DATA`` (nrow, nchan, 4;
    XX, YY, XY, YX), ``UTOBS`` (MJD), ``FREQ`` (first channel, MHz), ``CHAN_BW`` (MHz),
    ``NCHAN`` and ``EXPOSURE`` (s). One polarization is written to both XX and YY; the cross
    terms are zero. The DATA column carries ``TUNIT = 'K'``."""
    from astropy.io import fits

    from overtone_radio.spectra import frequency_axis

    axis = frequency_axis(ds)
    if axis.step_mhz < 0:
        raise ValueError("FAST FITS needs an increasing frequency axis")
    data = ds[variable]
    if "polarization" in data.dims:
        pols = data.transpose("time", "polarization", "frequency").values
    else:
        pols = np.repeat(data.transpose("time", "frequency").values[:, None, :], 2, axis=1)
    nrow, _, nchan = pols.shape
    table = np.zeros((nrow, nchan, 4), np.float32)
    table[:, :, 0] = pols[:, 0]
    table[:, :, 1] = pols[:, 1]
    if "mjd" in ds:
        mjd = ds["mjd"].values
    elif "time" in ds.coords and np.issubdtype(ds["time"].dtype, np.number):  # seconds from the start
        mjd = MJD_START + ds["time"].values / 86400.0
    else:
        mjd = MJD_START + np.arange(nrow) / 86400
    exposure = ds["exposure"].values if "exposure" in ds else np.ones(nrow)
    cols = [
        fits.Column("UTOBS", "D", array=mjd),
        fits.Column("FREQ", "D", unit="MHz", array=np.full(nrow, axis.values_mhz[0])),
        fits.Column("CHAN_BW", "D", unit="MHz", array=np.full(nrow, axis.step_mhz)),
        fits.Column("NCHAN", "J", array=np.full(nrow, nchan)),
        fits.Column("EXPOSURE", "D", unit="s", array=exposure),
        fits.Column("DATA", f"{nchan * 4}E", dim=f"(4,{nchan})", unit=data.attrs.get("units", ""),
                    array=table),
    ]
    hdu = fits.BinTableHDU.from_columns(cols, name="SINGLE DISH")
    hdu.header["TELESCOP"] = "FAST (simulated)"
    primary = fits.PrimaryHDU()
    primary.header["ORIGIN"] = "overtone_radio.simulate"
    path = Path(path)
    fits.HDUList([primary, hdu]).writeto(path, overwrite=True)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m overtone_radio.simulate -o obs.fits --seconds 60``"""
    parser = argparse.ArgumentParser(prog="python -m overtone_radio.simulate",
                                     description="Write a simulated FAST-like observation.")
    parser.add_argument("-o", "--output", required=True, help=".fits (FAST raw), .nc or .zarr")
    parser.add_argument("--seconds", type=float, default=60.0, help="duration (default 60)")
    parser.add_argument("--dt", type=float, default=1.0, help="seconds per spectrum (default 1)")
    parser.add_argument("--nchan", type=int, default=65536, help="channels (default 65536)")
    parser.add_argument("--f-start", type=float, default=1000.0, help="first channel, MHz")
    parser.add_argument("--npol", type=int, default=1, choices=(1, 2))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    obs = Observation(n_time=max(1, int(round(args.seconds / args.dt))), dt_s=args.dt,
                      nchan=args.nchan, f_start_mhz=args.f_start, npol=args.npol, seed=args.seed)
    ds = simulate(obs)
    out = Path(args.output)
    if out.suffix.lower() in (".fits", ".fit"):
        write_fast_fits(ds, out)
    else:
        from overtone.io import write_dataset

        write_dataset(ds.drop_attrs(deep=False).assign_attrs(ds.attrs), out)
    print(f"wrote {out} ({obs.n_time} spectra x {obs.nchan} channels)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
