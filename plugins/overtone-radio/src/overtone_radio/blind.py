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
* ``F``: RFI (scenario ``rfi`` only): narrow spikes (:class:`Spike`, persistent or for a
  few seconds), harmonic combs (:class:`Comb`, periods 8.1, 0.5 and 0.37 MHz) and broadband
  bursts (:class:`Burst`, tens of MHz for a second or two); it does not enter the ripple's
  gain (the ripple scales with T_sys + C only);
* ``n``: radiometer noise, sigma(t, nu) = T(t, nu) / sqrt(dnu dt) (the radiometer equation
  for one polarization), drawn once per observation, so a twin with some parts left out
  (``include``) carries exactly the same noise.

Two polarizations (scenario ``two-pol``): ``draw(..., polarization="XX")`` and ``"YY"`` share
the sky, the bandpass and the continuum; each has its own noise, and YY's standing waves are
XX's with amplitude, harmonic, phase, phase rate and period changed slightly
(:func:`perturb`), as two feeds' reflections differ.

:func:`draw` gives the observation of a named scenario (:data:`SCENARIOS`) for a seed: ripple
phases, amplitudes, drift states (a random start within the hour), source positions, bandpass
and noise all come from that seed. :func:`render` evaluates it.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field, replace

import numpy as np
import xarray as xr

from overtone_radio.simulate import FAST_CHANNEL_MHZ, Comb
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
class Spike:
    """Narrow RFI: a Gaussian of ``peak_k`` and sigma ``width_ch`` channels at ``freq_mhz``,
    on from ``start_s`` for ``duration_s`` (s from the start; ``None``: every spectrum)."""

    freq_mhz: float
    peak_k: float
    width_ch: float = 1.0
    start_s: float | None = None
    duration_s: float = 1.0


@dataclass(frozen=True)
class Burst:
    """Broadband RFI: ``peak_k`` flat over ``width_mhz`` around ``centre_mhz`` with raised-
    cosine edges ``taper_mhz`` wide, in the spectra from ``start_s`` for ``duration_s``."""

    centre_mhz: float
    width_mhz: float
    peak_k: float
    start_s: float
    duration_s: float = 1.0
    taper_mhz: float = 2.0


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
    spikes: tuple[Spike, ...] = ()
    combs: tuple[Comb, ...] = ()
    bursts: tuple[Burst, ...] = ()
    polarization: str = ""
    include: tuple[str, ...] = ("ripple", "lines", "continuum", "rfi", "noise")
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


def rfi(obs: BlindObservation) -> tuple[np.ndarray, np.ndarray]:
    """F(t, nu) (K), (n_time, nchan): spikes, combs and bursts, and the (n_time, nchan) mask
    of the channels where any of them is above ``mask_fraction`` of its peak (the truth)."""
    f, t = obs.frequencies(), np.arange(obs.n_time) * obs.dt_s
    out = np.zeros((obs.n_time, obs.nchan))
    mask = np.zeros(out.shape, bool)

    def on(start: float | None, duration: float) -> np.ndarray:
        if start is None:
            return np.ones(t.size, bool)
        return (t + obs.dt_s > start) & (t < start + duration)

    def narrow(nu: float, peak: float, width_ch: float, rows: np.ndarray) -> None:
        sigma = width_ch * obs.channel_mhz
        lo, hi = np.searchsorted(f, [nu - 8 * sigma, nu + 8 * sigma])
        prof = peak * np.exp(-0.5 * ((f[lo:hi] - nu) / sigma) ** 2)
        out[np.ix_(rows, np.arange(lo, hi))] += prof[None, :]
        mask[np.ix_(rows, np.arange(lo, hi))] |= (prof > obs.mask_fraction * peak)[None, :]

    for s in obs.spikes:
        narrow(s.freq_mhz, s.peak_k, s.width_ch, np.flatnonzero(on(s.start_s, s.duration_s)))
    every = np.arange(obs.n_time)
    for c in obs.combs:
        for nu in np.arange(c.start_mhz, c.stop_mhz + 1e-9, c.period_mhz):
            if f[0] < nu < f[-1]:
                narrow(float(nu), c.height_k, c.width_ch, every)
    for b in obs.bursts:
        d = np.abs(f - b.centre_mhz) - b.width_mhz / 2
        prof = np.where(d <= 0, 1.0, np.where(d < b.taper_mhz,
                                              0.5 * (1 + np.cos(np.pi * d / b.taper_mhz)), 0.0))
        rows = on(b.start_s, b.duration_s)
        out[rows] += b.peak_k * prof[None, :]
        mask[rows] |= (prof > obs.mask_fraction)[None, :]
    return out, mask


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
    standard deviation per channel), ``line_masks`` (one per line), ``rfi`` and ``rfi_mask``
    (RFI's channels) and ``mask`` (any line or RFI: the channels a measurement leaves out)."""

    spectra: np.ndarray
    bandpass: np.ndarray
    continuum: np.ndarray
    lines: np.ndarray
    ripple: np.ndarray
    sigma: np.ndarray
    line_masks: list[np.ndarray]
    rfi: np.ndarray | float = 0.0
    rfi_mask: np.ndarray | None = None

    @property
    def mask(self) -> np.ndarray:
        """Channels of any line or RFI, (n_time, nchan)."""
        out = np.zeros(self.spectra.shape, bool) if self.rfi_mask is None else self.rfi_mask.copy()
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
    interference, rfi_mask = rfi(obs)
    total = base[None, :] + cont + lin + rip + interference
    sigma = total / np.sqrt(obs.channel_mhz * 1e6 * obs.dt_s)
    model = np.broadcast_to(base, total.shape).copy()
    for name, part in (("continuum", cont), ("lines", lin), ("ripple", rip),
                       ("rfi", interference)):
        if name in obs.include:
            model += part
    if "noise" in obs.include:
        name = obs.scenario + (f":{obs.polarization}" if obs.polarization else "")
        rng = np.random.default_rng([obs.seed, _code(name), 7])
        model += sigma * rng.standard_normal(model.shape, dtype=np.float32)
    return Rendered(model.astype(np.float32), base, cont, lin, rip, sigma, masks, interference,
                    rfi_mask)


def mean_of(a: Rendered, b: Rendered) -> Rendered:
    """The mean of two polarizations' renderings: every part averaged, ``sigma`` the mean's
    noise sqrt(sigma_a^2 + sigma_b^2) / 2 (independent noise), masks OR-ed."""
    masks = [ma | mb for ma, mb in zip(a.line_masks, b.line_masks)]
    rfi_mask = None if a.rfi_mask is None else a.rfi_mask | b.rfi_mask
    return Rendered(((a.spectra.astype(np.float64) + b.spectra) / 2).astype(np.float32),
                    (a.bandpass + b.bandpass) / 2, (a.continuum + b.continuum) / 2,
                    (a.lines + b.lines) / 2, (a.ripple + b.ripple) / 2,
                    np.sqrt(a.sigma**2 + b.sigma**2) / 2, masks, (a.rfi + b.rfi) / 2, rfi_mask)


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
    "two-pol": "XX and YY: the ~1.09 MHz ripple differing per feed (amplitude, phase, period), "
               "a continuum source in both",
    "rfi": "the ~1.09 MHz ripple with narrow RFI spikes, harmonic combs (8.1, 0.5, 0.37 MHz) "
           "and a broadband burst",
}

#: Scenarios drawn per polarization (``draw(..., polarization=...)``).
POLARIZED = {"two-pol": ("XX", "YY")}


def perturb(r: Ripple, rng: np.random.Generator) -> Ripple:
    """The same standing wave as seen by the other feed: amplitude x U(0.75, 1.25), harmonic
    x U(0.7, 1.3), phase + U(-0.6, 0.6) rad, phase rate + U(-0.3, 0.3) deg/s, period x
    (1 + U(-0.004, 0.004)) (about +-0.004 MHz at 1.09 MHz)."""
    scale = 1 + rng.uniform(-0.004, 0.004)
    return replace(r, amplitude_k=r.amplitude_k * rng.uniform(0.75, 1.25),
                   harmonic=r.harmonic * rng.uniform(0.7, 1.3),
                   phase0=r.phase0 + rng.uniform(-0.6, 0.6),
                   rate_deg_s=r.rate_deg_s + rng.uniform(-0.3, 0.3),
                   p_low=r.p_low * scale, p_high=r.p_high * scale)


def draw(scenario: str, seed: int, *, n_time: int = 30, nchan: int = 65536,
         f_start_mhz: float = 1000.0, dt_s: float = 1.0,
         polarization: str = "") -> BlindObservation:
    """The observation of ``scenario`` (:data:`SCENARIOS`) for ``seed``: a random start within
    the hour, random bandpass, ripple phases, amplitudes and drift states, and random source
    positions, all from ``numpy.random.default_rng([seed, crc32(scenario)])``. Scenarios in
    :data:`POLARIZED` need ``polarization`` (one of theirs); others take none."""
    if scenario not in SCENARIOS:
        raise ValueError(f"scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
    pols = POLARIZED.get(scenario, ("",))
    if polarization not in pols:
        raise ValueError(f"scenario {scenario!r} takes polarization in {pols}, not "
                         f"{polarization!r}")
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
    spikes: list[Spike] = []
    combs: list[Comb] = []
    bursts: list[Burst] = []
    if scenario == "two-pol":
        rip, cont = [main()], [source]
        other = perturb(rip[0], rng)  # drawn for both, so XX and YY share the rest
        if polarization == "YY":
            rip = [other]
    elif scenario == "rfi":
        rip = [main()]
        for i in range(20):  # half persistent, half for 1-6 s
            start = None if i % 2 == 0 else u(0, span)
            spikes.append(Spike(in_band(lo, hi, avoid=1.0), float(10 ** u(np.log10(0.5), 2)),
                                u(0.5, 2.0), start, u(1, 6)))
        c81 = u(lo, lo + 8.1)
        s05, s037 = in_band(lo + 20, hi - 60), in_band(lo + 20, hi - 40)
        combs = [Comb(8.1, u(0.12, 0.3), c81, hi), Comb(0.5, u(0.12, 0.3), s05, s05 + 40),
                 Comb(0.37, u(0.12, 0.3), s037, s037 + 20)]
        bursts = [Burst(in_band(lo + 30, hi - 30, avoid=30), u(20, 40), u(0.5, 2.0),
                        start_s=float(rng.integers(0, n_time)) * dt_s, duration_s=u(1, 2.5),
                        taper_mhz=u(1, 3))]
    return BlindObservation(
        scenario=scenario, seed=seed, n_time=n_time, dt_s=dt_s, t0_s=t0, nchan=nchan,
        f_start_mhz=f_start_mhz, tilt=u(-0.08, 0.08), bumps=bumps, edge_rise=u(0.1, 0.4),
        edge_mhz=u(1.0, 3.0), ripples=tuple(rip), lines=tuple(obs_lines), continua=tuple(cont),
        spikes=tuple(spikes), combs=tuple(combs), bursts=tuple(bursts), polarization=polarization)
