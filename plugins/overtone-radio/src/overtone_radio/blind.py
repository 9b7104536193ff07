"""Blind FAST-like observations: a sky and a receiver the FFT filter was not built from.

:mod:`overtone_radio.simulate` draws its standing wave from the filter's own model (a
sinusoid of fixed period and its harmonic). This module draws observations from other
models, each with its truth, to test the filter and its peers on data they were not tuned on.
Per spectrum t (time t0 + t dt within a simulated hour) and channel frequency nu (MHz):

    T(t, nu) = T_sys(nu) + C(t, nu) + L(t, nu) + R(t, nu) + n(t, nu)

* ``T_sys(nu)``: a bandpass of another form than the filter assumes: a random tilt, three
  broad Gaussian bumps (15-60 MHz wide, +-3-8%) and a rise of up to 40% within a few MHz of
  each band edge;
* ``C``: continuum sources drifting through the beam (Gaussian in time, power law
  nu^alpha in frequency): a step in total power over time, a slope across the band;
* ``L``: lines (Gaussian in frequency and time): the Milky Way at 1420.406 MHz in every
  spectrum, galaxies that transit the beam at random times, and broad (~1 MHz) lines;
* ``R``: standing waves, each :class:`Ripple` a function of the phase
  phi(t, nu) = 2 pi int dnu / P(t, nu) + phi0 + omega t, with a period that may change
  linearly across the band (P from ``p_low`` to ``p_high``) and drift slowly over the hour;
  its shape is a cosine with a harmonic, or a sawtooth (a reflection with a sharp edge:
  harmonics k at amplitude 2 A / (pi k)); its amplitude scales with the total continuum
  power (T_sys + C) / T_sys (a standing wave is a reflection of what enters the feed);
* ``n``: radiometer noise, sigma(t, nu) = T(t, nu) / sqrt(dnu dt) (the radiometer equation
  for one polarization), drawn once per observation, so a twin with some parts left out
  (``include``) carries exactly the same noise.

:func:`draw` gives the observation of a named scenario (:data:`SCENARIOS`) for a seed: ripple
phases, amplitudes, drift states (a random start within the hour), source positions, bandpass
and noise all come from that seed. :func:`render` evaluates it.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field, replace

import numpy as np
import xarray as xr

from overtone_radio.simulate import FAST_CHANNEL_MHZ
from overtone_radio.simulate import Source as Line  # a Gaussian line (MHz, K, s)

LINE_TRANSIT_S = 12.0  # FWHM in time of a transiting line here (the simulator's default is 20 s)

HOUR_S = 3600.0
MILKY_WAY_LINE_MHZ = 1420.406


@dataclass(frozen=True)
class Ripple:
    """A standing wave. Period P(t, nu) in MHz: ``p_low`` at the band's low edge to ``p_high``
    at its high edge, times (1 + ``drift`` sin(2 pi t / hour + ``drift_phase``)); peak
    amplitude ``amplitude_k`` x (1 + 0.2 sin(2 pi t / ``amp_period_s`` + ``phase0``)); phase
    drift ``rate_deg_s``. ``shape``: ``"cosine"`` (plus ``harmonic`` x cos(2 phi + 1)) or
    ``"sawtooth"`` (2 A (phi / 2 pi mod 1) - A)."""

    p_low: float
    p_high: float
    amplitude_k: float
    phase0: float = 0.0
    rate_deg_s: float = 1.8
    drift: float = 0.0
    drift_phase: float = 0.0
    amp_period_s: float = 1000.0
    shape: str = "cosine"
    harmonic: float = 0.0

    def harmonics(self, max_us: float = 30.0) -> range:
        """Its harmonic numbers k (delays k / P): 1 and 2 for a cosine (2 only with a
        ``harmonic``), every k up to ``max_us`` for a sawtooth."""
        if self.shape == "sawtooth":
            return range(1, max(2, int(max_us / self.delays_us()[0]) + 1))
        return range(1, 3 if self.harmonic else 2)

    def delays_us(self) -> tuple[float, float]:
        """The range of its fundamental delay 1 / P (us) over the band and the hour."""
        lo = 1.0 / (max(self.p_low, self.p_high) * (1 + abs(self.drift)))
        hi = 1.0 / (min(self.p_low, self.p_high) * (1 - abs(self.drift)))
        return lo, hi


@dataclass(frozen=True)
class Continuum:
    """A continuum source: ``peak_k`` at 1250 MHz, spectral index ``index`` (T ~ nu^index),
    transit at ``transit_s`` with FWHM ``duration_s`` (s from the start)."""

    peak_k: float
    index: float
    transit_s: float
    duration_s: float = 12.0


@dataclass(frozen=True)
class BlindObservation:
    """One simulated observation with its truth (see the module docstring)."""

    scenario: str
    seed: int
    n_time: int = 30
    dt_s: float = 1.0
    t0_s: float = 0.0
    nchan: int = 65536
    f_start_mhz: float = 1000.0
    channel_mhz: float = FAST_CHANNEL_MHZ
    tsys_k: float = 20.0
    tilt: float = 0.0
    bumps: tuple[tuple[float, float, float], ...] = ()  # (centre MHz, sigma MHz, fraction)
    edge_rise: float = 0.0
    edge_mhz: float = 2.0
    ripples: tuple[Ripple, ...] = ()
    lines: tuple[Line, ...] = ()
    continua: tuple[Continuum, ...] = ()
    include: tuple[str, ...] = ("ripple", "lines", "continuum", "noise")
    mask_fraction: float = 0.01
    notes: dict = field(default_factory=dict, compare=False)

    def frequencies(self) -> np.ndarray:
        """Channel frequencies (MHz)."""
        return self.f_start_mhz + self.channel_mhz * np.arange(self.nchan)

    def times(self) -> np.ndarray:
        """Times within the hour (s) of the spectra."""
        return self.t0_s + self.dt_s * np.arange(self.n_time)

    def without(self, *parts: str) -> BlindObservation:
        """The same observation (same noise) with ``parts`` left out."""
        return replace(self, include=tuple(p for p in self.include if p not in parts))

    def true_delays_us(self) -> list[tuple[float, float]]:
        """Delay ranges (us) of every ripple's fundamental and harmonics over the band and
        the hour."""
        return [(k * r.delays_us()[0], k * r.delays_us()[1])
                for r in self.ripples for k in r.harmonics()]


def _gauss(x: np.ndarray, fwhm: float) -> np.ndarray:
    return np.exp(-4 * np.log(2) * (x / fwhm) ** 2)


def bandpass(obs: BlindObservation) -> np.ndarray:
    """T_sys(nu) (K, float64): tilt, broad bumps and the rise at the band edges."""
    f = obs.frequencies()
    x = 2 * (f - f.mean()) / (f[-1] - f[0])
    shape = 1 + obs.tilt * x
    for centre, sigma, frac in obs.bumps:
        shape += frac * np.exp(-0.5 * ((f - centre) / sigma) ** 2)
    edges = obs.edge_rise * (np.exp(-(f - f[0]) / obs.edge_mhz) + np.exp(-(f[-1] - f) / obs.edge_mhz))
    return obs.tsys_k * shape * (1 + edges)


def continuum(obs: BlindObservation) -> np.ndarray:
    """C(t, nu) (K): the continuum sources, (n_time, nchan)."""
    f, t = obs.frequencies(), np.arange(obs.n_time) * obs.dt_s
    out = np.zeros((obs.n_time, obs.nchan))
    for c in obs.continua:
        out += c.peak_k * _gauss(t - c.transit_s, c.duration_s)[:, None] * (f / 1250.0)[None, :] ** c.index
    return out


def lines(obs: BlindObservation) -> tuple[np.ndarray, list[np.ndarray]]:
    """L(t, nu) (K), (n_time, nchan), and per line the (n_time, nchan) mask of the channels
    above ``mask_fraction`` of its peak (the truth used to measure, never given to a filter)."""
    f, t = obs.frequencies(), np.arange(obs.n_time) * obs.dt_s
    out = np.zeros((obs.n_time, obs.nchan))
    masks = []
    for s in obs.lines:
        spec = _gauss(f - s.freq_mhz, s.fwhm_mhz)
        time = np.ones(t.size) if s.transit_s is None else _gauss(t - s.transit_s, s.duration_s)
        profile = s.peak_k * time[:, None] * spec[None, :]
        out += profile
        masks.append(profile > obs.mask_fraction * s.peak_k)
    return out, masks


def ripple_phase(r: Ripple, f: np.ndarray, t_s: np.ndarray) -> np.ndarray:
    """phi(t, nu) (rad), (len(t_s), len(f)): 2 pi int_{f0}^{nu} dnu' / P(t, nu') with P linear
    in nu from ``p_low`` to ``p_high`` (closed form: 2 pi B / (p_high - p_low) ln(P(nu) /
    p_low)), scaled by the drift factor, plus phase0 + rate t. The instantaneous period
    2 pi / (d phi / d nu) is P(t, nu)."""
    span = f[-1] - f[0]
    u = f - f[0]
    if abs(r.p_high - r.p_low) < 1e-12:
        cycles = u / r.p_low
    else:
        k = (r.p_high - r.p_low) / span
        cycles = np.log1p(k * u / r.p_low) / k
    scale = 1.0 + r.drift * np.sin(2 * np.pi * t_s / HOUR_S + r.drift_phase)
    return (2 * np.pi * cycles[None, :] / scale[:, None]
            + (r.phase0 + np.deg2rad(r.rate_deg_s) * t_s)[:, None])


def ripple_shape(r: Ripple, phi: np.ndarray) -> np.ndarray:
    """The waveform at phase ``phi`` for unit amplitude."""
    if r.shape == "sawtooth":
        return 2.0 * np.mod(phi / (2 * np.pi), 1.0) - 1.0
    if r.shape == "cosine":
        return np.cos(phi) + r.harmonic * np.cos(2 * phi + 1.0)
    raise ValueError(f"ripple shape {r.shape!r}; use 'cosine' or 'sawtooth'")


def ripples(obs: BlindObservation, power: np.ndarray | None = None) -> np.ndarray:
    """R(t, nu) (K), (n_time, nchan): every standing wave, its amplitude scaled by the total
    continuum power ``power`` / T_sys (``power``: T_sys + C, (n_time, nchan); default T_sys)."""
    f, t_abs = obs.frequencies(), obs.times()
    base = bandpass(obs)
    gain = 1.0 if power is None else power / base[None, :]
    out = np.zeros((obs.n_time, obs.nchan))
    for r in obs.ripples:
        amp = r.amplitude_k * (1 + 0.2 * np.sin(2 * np.pi * t_abs / r.amp_period_s + r.phase0))
        out += amp[:, None] * ripple_shape(r, ripple_phase(r, f, t_abs))
    return out * gain


@dataclass
class Rendered:
    """An observation evaluated: ``spectra`` (n_time, nchan) float32 and its parts (float64):
    ``bandpass`` (nchan,), ``continuum``, ``lines``, ``ripple`` and ``sigma`` (the noise
    standard deviation per channel), ``line_masks`` (one per line) and ``mask`` (any line)."""

    spectra: np.ndarray
    bandpass: np.ndarray
    continuum: np.ndarray
    lines: np.ndarray
    ripple: np.ndarray
    sigma: np.ndarray
    line_masks: list[np.ndarray]

    @property
    def mask(self) -> np.ndarray:
        out = np.zeros(self.spectra.shape, bool)
        for m in self.line_masks:
            out |= m
        return out


def render(obs: BlindObservation) -> Rendered:
    """Evaluate ``obs``: the parts in ``obs.include`` summed, plus noise of standard deviation
    T_total / sqrt(dnu dt) computed from *every* part (so twins share their noise)."""
    base = bandpass(obs)
    cont = continuum(obs)
    lin, masks = lines(obs)
    rip = ripples(obs, base[None, :] + cont)
    total = base[None, :] + cont + lin + rip
    sigma = total / np.sqrt(obs.channel_mhz * 1e6 * obs.dt_s)
    model = np.broadcast_to(base, total.shape).copy()
    for name, part in (("continuum", cont), ("lines", lin), ("ripple", rip)):
        if name in obs.include:
            model += part
    if "noise" in obs.include:
        rng = np.random.default_rng([obs.seed, _code(obs.scenario), 7])
        model += sigma * rng.standard_normal(model.shape, dtype=np.float32)
    return Rendered(model.astype(np.float32), base, cont, lin, rip, sigma, masks)


def to_dataset(obs: BlindObservation, spectra: np.ndarray) -> xr.Dataset:
    """Spectra as the Dataset the processors take: ``spectrum (time, frequency)`` in K,
    ``exposure``, ``telescope = "FAST (simulated)"``; no ``source_mask`` (the point of a blind
    test: protection is left to the methods)."""
    t = np.arange(obs.n_time) * obs.dt_s
    return xr.Dataset(
        {"spectrum": (("time", "frequency"), spectra, {"units": "K"}),
         "exposure": ("time", np.full(obs.n_time, obs.dt_s), {"units": "s"})},
        coords={"time": ("time", t, {"units": "s"}),
                "frequency": ("frequency", obs.frequencies(), {"units": "MHz"})},
        attrs={"telescope": "FAST (simulated)", "title": f"blind scenario {obs.scenario}"})


def _code(name: str) -> int:
    return zlib.crc32(name.encode())


#: Scenario name -> what it holds (every scenario also has the blind bandpass, the Milky Way
#: line, four galaxies transiting at random times and frequencies, and radiometer noise).
SCENARIOS: dict[str, str] = {
    "control": "one cosine ripple of fixed period 1.08-1.10 MHz with a 0.25 harmonic (the filter's form)",
    "drift": "period 1.07 -> 1.11 MHz across the band, drifting +-1% over the hour",
    "two-path": "two delays: the ~1.09 MHz ripple and a 1.6-2.0 MHz one (0.5-0.62 us)",
    "sawtooth": "a sawtooth ripple (sharp-edged reflection: harmonics at 2A / (pi k))",
    "fast-39khz": "the ~1.09 MHz ripple plus the 0.039 MHz (25.6 us) component",
    "broad-lines": "the ~1.09 MHz ripple plus three broad lines (0.8-1.5 MHz FWHM, 0.1-0.4 K)",
    "continuum": "the ~1.09 MHz ripple scaled by a 2-10 K continuum source drifting through",
    "null": "no standing wave; broad lines and a continuum source (what is removed is fake)",
    "combined": "drift + two-path + 0.039 MHz + broad lines + continuum at once",
}


def draw(scenario: str, seed: int, *, n_time: int = 30, nchan: int = 65536,
         f_start_mhz: float = 1000.0, dt_s: float = 1.0) -> BlindObservation:
    """The observation of ``scenario`` (:data:`SCENARIOS`) for ``seed``: a random start within
    the hour, random bandpass, ripple phases, amplitudes and drift states, and random source
    positions, all from ``numpy.random.default_rng([seed, crc32(scenario)])``."""
    if scenario not in SCENARIOS:
        raise ValueError(f"scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
    rng = np.random.default_rng([seed, _code(scenario)])
    span = n_time * dt_s
    band = nchan * FAST_CHANNEL_MHZ
    lo, hi = f_start_mhz, f_start_mhz + band

    def u(a: float, b: float) -> float:
        return float(rng.uniform(a, b))

    def main(**kw) -> Ripple:
        p = u(1.08, 1.10)
        args = dict(p_low=p, p_high=p, amplitude_k=u(0.06, 0.10), phase0=u(0, 2 * np.pi),
                    rate_deg_s=u(1.2, 2.4) * rng.choice([-1, 1]), harmonic=u(0.15, 0.3),
                    amp_period_s=u(600, 1800))
        args.update(kw)
        return Ripple(**args)

    def in_band(a: float, b: float, avoid: float = 3.0) -> float:
        while True:
            f = u(max(lo + 10, a), min(hi - 10, b))
            if abs(f - MILKY_WAY_LINE_MHZ) > avoid:
                return f

    t0 = u(0, HOUR_S - span)
    bumps = tuple((u(lo, hi), u(15, 60), u(0.03, 0.08) * rng.choice([-1, 1])) for _ in range(3))
    obs_lines = [Line(MILKY_WAY_LINE_MHZ, 3.0, 0.15)]
    obs_lines += [Line(in_band(lo, hi), u(0.1, 0.5), u(0.2, 0.6), transit_s=u(0, span),
                       duration_s=LINE_TRANSIT_S) for _ in range(4)]
    broad = [Line(in_band(lo, hi), u(0.1, 0.4), u(0.8, 1.5), transit_s=u(0, span),
                  duration_s=LINE_TRANSIT_S) for _ in range(3)]
    source = Continuum(u(2, 10), u(-1.0, -0.4), transit_s=u(0.2 * span, 0.8 * span))
    chirp = dict(p_low=1.07, p_high=1.11, drift=0.01, drift_phase=u(0, 2 * np.pi))
    second = Ripple(*(2 * [1 / u(0.5, 0.62)]), amplitude_k=u(0.03, 0.06), phase0=u(0, 2 * np.pi),
                    rate_deg_s=u(-2, 2))
    fast39 = Ripple(0.039, 0.039, amplitude_k=u(0.02, 0.04), phase0=u(0, 2 * np.pi),
                    rate_deg_s=u(-2, 2))
    rip: list[Ripple] = []
    cont: list[Continuum] = []
    if scenario == "control":
        rip = [main()]
    elif scenario == "drift":
        rip = [main(**chirp)]
    elif scenario == "two-path":
        rip = [main(), second]
    elif scenario == "sawtooth":
        rip = [main(shape="sawtooth", harmonic=0.0, amplitude_k=u(0.08, 0.12))]
    elif scenario == "fast-39khz":
        rip = [main(), fast39]
    elif scenario == "broad-lines":
        rip, obs_lines = [main()], obs_lines + broad
    elif scenario == "continuum":
        rip, cont = [main()], [source]
    elif scenario == "null":
        obs_lines, cont = obs_lines + broad, [source]
    elif scenario == "combined":
        rip, obs_lines, cont = [main(**chirp), second, fast39], obs_lines + broad, [source]
    return BlindObservation(
        scenario=scenario, seed=seed, n_time=n_time, dt_s=dt_s, t0_s=t0, nchan=nchan,
        f_start_mhz=f_start_mhz, tilt=u(-0.08, 0.08), bumps=bumps, edge_rise=u(0.1, 0.4),
        edge_mhz=u(1.0, 3.0), ripples=tuple(rip), lines=tuple(obs_lines), continua=tuple(cont))
