"""``harmonic-rfi``: find RFI that repeats in frequency (combs nu_0 + k P) and mask it.

Method (on the time-mean spectrum, so weak combs rise above the noise):

1. the mean spectrum minus its running median over ``baseline_mhz`` (removes the bandpass
   and the ~1 MHz ripple, keeps spikes a few channels wide); source channels are skipped;
2. peaks: local maxima above ``nsigma`` robust sigma (1.4826 MAD) and ``min_height``, one
   per feature (maxima joined by channels above half the limit are one line, however many
   local maxima it has);
3. the peaks' positions form an impulse train whose rfft gives the Rayleigh power
   Z(tau) = |sum_i exp(-2 pi i nu_i tau)|^2 / n_peaks (about 1 for random positions); a comb of
   period P puts Z ~ n_teeth^2 / n_peaks at tau = k / P for every k;
4. greedily: the strongest tau with Z > ``z_min`` gives candidate periods k / tau (k up to
   the longest period allowed);
   the fundamental is the k maximising members^2 / slots (members: peaks within
   min(``tolerance_mhz``, 0.05 P) of nu_0 + n P; slots: teeth the span could hold), so a
   harmonic tau = k / P does not report P / k and a short period does not collect stray
   peaks; P and nu_0 are refined by least squares on (n, nu_i), and only the stretch of teeth
   with at most 8 missing in a row that holds the most members is kept;
   combs on at least ``min_teeth`` distinct teeth (different n, not peaks: the peaks of one
   line are one tooth) are kept and their peaks removed; repeat.

In the delay domain the FAST periods 8.1, 0.5 and 0.37 MHz sit at 0.123, 2.0 and 2.70 us.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr
from overtone import ConfigError, DatasetError
from scipy import signal
from scipy.stats import median_abs_deviation

from overtone_radio import __version__
from overtone_radio.spectra import (
    FLAG,
    SOURCE_MASK,
    check_pair,
    frequency_axis,
    pick_variable,
    record,
)


def find_peaks(resid: np.ndarray, nsigma: float, min_height: float) -> np.ndarray:
    """Channels of the distinct peaks of ``resid``: local maxima (``scipy.signal.find_peaks``)
    above nsigma robust sigma (1.4826 MAD, ``scipy.stats.median_abs_deviation``) and
    ``min_height``, one per feature: maxima joined by channels above half that limit (one
    broad line, a maser with many local maxima, say) count once, at the highest."""
    finite = np.isfinite(resid)
    sigma = median_abs_deviation(resid[finite], scale="normal")
    r = np.where(finite, resid, -np.inf)
    limit = max(nsigma * sigma, min_height)
    cand, _ = signal.find_peaks(r, height=limit)
    if cand.size == 0:
        return cand.astype(np.int64)
    feature = np.cumsum(~(r > 0.5 * limit))[cand]  # same number: joined by a run above limit/2
    order = np.lexsort((-r[cand], feature))
    first = np.ones(order.size, bool)
    first[1:] = feature[order][1:] != feature[order][:-1]
    return np.sort(cand[order[first]]).astype(np.int64)


def _members(freqs: np.ndarray, period: float, tol: float) -> tuple[np.ndarray, float]:
    """Peaks on the comb nu_0 + n ``period`` (within ``tol``) that holds the most distinct
    teeth, with nu_0 taken at one of the peaks (robust to peaks of other combs)."""
    dist = (freqs[None, :] - freqs[:, None] + period / 2) % period - period / 2
    near = np.abs(dist) <= tol
    tooth = np.round((freqs[None, :] - freqs[:, None]) / period)
    counts = [np.unique(tooth[i][near[i]]).size for i in range(freqs.size)]
    anchor = int(np.argmax(counts))
    return near[anchor], float(freqs[anchor])


def distinct_teeth(freqs: np.ndarray, period: float, offset: float) -> int:
    """How many different teeth n (nu = offset + n period) the peaks ``freqs`` sit on."""
    return int(np.unique(np.round((freqs - offset) / period)).size)


def _fit_comb(freqs: np.ndarray, period: float, tolerance: float
              ) -> tuple[float, float, np.ndarray, float]:
    """Members of the comb near ``period`` and its least-squares period and offset: members
    are found with a loose tolerance, (n, nu) fitted, then recounted with the tight one."""
    tol = min(tolerance, 0.05 * period)
    member, offset = _members(freqs, period, min(2 * tol, 0.1 * period))
    for _ in range(2):
        idx = np.round((freqs[member] - offset) / period)
        if member.sum() < 2 or np.ptp(idx) == 0:
            break
        period, offset = np.polyfit(idx, freqs[member], 1)
        period = abs(period)
        dist = (freqs - offset + period / 2) % period - period / 2
        member = np.abs(dist) <= tol
        member = _densest_stretch(freqs, member, period, offset)
    return float(period), float(offset), member, tol


def _densest_stretch(freqs: np.ndarray, member: np.ndarray, period: float, offset: float,
                     max_gap: int = 8) -> np.ndarray:
    """Keep the members of the stretch of teeth, with no more than ``max_gap`` missing teeth in
    a row, that holds the most members (stray peaks far from the comb fall out)."""
    where = np.flatnonzero(member)
    if where.size < 2:
        return member
    order = where[np.argsort(freqs[where])]
    teeth = np.round((freqs[order] - offset) / period)
    breaks = np.flatnonzero(np.diff(teeth) > max_gap + 1) + 1
    groups = np.split(order, breaks)
    keep = max(groups, key=len)
    out = np.zeros_like(member)
    out[keep] = True
    return out


def find_combs(freq_mhz: np.ndarray, resid: np.ndarray, peaks: np.ndarray, *,
               period_range_mhz: tuple[float, float], z_min: float, min_teeth: int,
               tolerance_mhz: float, max_combs: int) -> list[dict[str, float]]:
    """Combs among the ``peaks`` (channel indices) of ``resid``; see the module docstring."""
    n = freq_mhz.size
    step = abs(freq_mhz[1] - freq_mhz[0])
    tau = np.fft.rfftfreq(n, step)
    allowed = (tau >= 1 / period_range_mhz[1]) & (tau <= 1 / period_range_mhz[0])
    remaining = peaks.copy()
    combs: list[dict[str, float]] = []
    rejected = np.zeros(tau.size, bool)
    while len(combs) < max_combs and remaining.size >= min_teeth:
        train = np.zeros(n)
        train[remaining] = 1.0
        z = np.abs(np.fft.rfft(train)) ** 2 / remaining.size
        z[~allowed | rejected] = 0
        best = int(np.argmax(z))
        if z[best] < z_min:
            break
        f = freq_mhz[remaining]
        # refine the delay on a grid 20x finer than the rfft bins (the peak of a short comb is
        # broad, and its harmonics multiply the error)
        fine = tau[best] + np.linspace(-1, 1, 41) * (tau[1] - tau[0])
        power = np.abs(np.exp(-2j * np.pi * np.outer(fine, f)).sum(axis=1))
        tau_best = fine[np.argmax(power)]
        best_fit = (-1.0, 0.0, 0.0, np.zeros(f.size, bool), 0.0)
        k_max = int(min(100, max(1, np.floor(tau_best * period_range_mhz[1]))))
        for k in range(1, k_max + 1):
            period, offset, member, tol = _fit_comb(f, k / tau_best, tolerance_mhz)
            m = distinct_teeth(f[member], period, offset)
            if m < 2:
                continue
            slots = np.ptp(f[member]) / period + 1
            score = m * m / slots
            if score > best_fit[0]:
                best_fit = (score, period, offset, member, tol)
        _, period, offset, member, tol = best_fit
        if distinct_teeth(f[member], period, offset) < min_teeth:
            rejected[max(0, best - 2):best + 3] = True
            continue
        heights = resid[remaining[member]]
        first, last = f[member].min(), f[member].max()
        combs.append({"period": float(abs(period)), "offset": float(first),
                      "stop": float(last), "amplitude": float(np.median(heights)),
                      "teeth": distinct_teeth(f[member], period, offset)})
        remaining = remaining[~member]
    return combs


def comb_mask(freq_mhz: np.ndarray, combs: list[dict[str, float]], halfwidth_mhz: float) -> np.ndarray:
    """Channels within ``halfwidth_mhz`` of every predicted tooth nu_0 + k P of each comb,
    between its first and last detected tooth."""
    mask = np.zeros(freq_mhz.size, bool)
    for c in combs:
        for centre in np.arange(c["offset"], c["stop"] + c["period"] / 2, c["period"]):
            mask |= np.abs(freq_mhz - centre) <= halfwidth_mhz
    return mask


class HarmonicRFI:
    """``harmonic-rfi``: periods, amplitudes and a channel mask of comb-like RFI.

    Computes the time-mean spectrum (one pass over the data, evaluated now) and returns the
    input Dataset (spectra still lazy) plus ``rfi_period`` (MHz), ``rfi_offset`` (MHz, first
    tooth), ``rfi_amplitude`` (data units, median tooth height), ``rfi_teeth`` along a new dim
    ``rfi``, and ``rfi_mask`` (frequency), which is also OR-ed into ``flag`` when
    ``update_flag`` (so a following ``fft-standing-wave`` substitutes those channels).
    """

    name = "harmonic-rfi"

    def __init__(self, variable: str | None = None, nsigma: float = 5.0, min_height: float = 0.0,
                 baseline_mhz: float = 0.12, period_range_mhz: tuple[float, float] = (0.1, 20.0),
                 z_min: float = 20.0, min_teeth: int = 4, tolerance_mhz: float = 0.016,
                 mask_halfwidth_mhz: float = 0.023, max_combs: int = 10,
                 update_flag: bool = True) -> None:
        period_range_mhz = check_pair(period_range_mhz, "period_range_mhz", "MHz")
        if period_range_mhz[0] == 0:
            raise ConfigError("period_range_mhz must start above 0 MHz")
        if nsigma <= 0 or z_min <= 0 or min_teeth < 2 or baseline_mhz <= 0:
            raise ConfigError("nsigma, z_min, baseline_mhz must be positive and min_teeth >= 2")
        self.variable = variable
        self.nsigma = float(nsigma)
        self.min_height = float(min_height)
        self.baseline_mhz = float(baseline_mhz)
        self.period_range_mhz = (float(period_range_mhz[0]), float(period_range_mhz[1]))
        self.z_min = float(z_min)
        self.min_teeth = int(min_teeth)
        self.tolerance_mhz = float(tolerance_mhz)
        self.mask_halfwidth_mhz = float(mask_halfwidth_mhz)
        self.max_combs = int(max_combs)
        self.update_flag = update_flag

    def params(self) -> dict[str, Any]:
        return {"variable": self.variable, "nsigma": self.nsigma, "min_height": self.min_height,
                "baseline_mhz": self.baseline_mhz, "period_range_mhz": list(self.period_range_mhz),
                "z_min": self.z_min, "min_teeth": self.min_teeth,
                "tolerance_mhz": self.tolerance_mhz, "mask_halfwidth_mhz": self.mask_halfwidth_mhz,
                "max_combs": self.max_combs, "update_flag": self.update_flag}

    def mean_residual(self, ds: xr.Dataset, name: str, step_mhz: float) -> np.ndarray:
        """Time-mean spectrum minus its running median (NaN at source or flagged channels)."""
        from scipy.ndimage import median_filter

        data = ds[name]
        others = [d for d in data.dims if d != "frequency"]
        for m in (SOURCE_MASK, FLAG):
            if m in ds.variables and ds[m].dtype == bool:
                data = data.where(~ds[m])
        mean = np.asarray(data.mean(others).values if others else data.values, dtype=np.float64)
        if not np.isfinite(mean).any():
            raise DatasetError("harmonic-rfi: every channel is flagged or NaN; nothing to search")
        width = max(3, int(round(self.baseline_mhz / step_mhz)) | 1)
        filled = np.where(np.isfinite(mean), mean, np.nanmedian(mean))
        return np.where(np.isfinite(mean), filled - median_filter(filled, width, mode="nearest"),
                        np.nan)

    def __call__(self, ds: xr.Dataset) -> xr.Dataset:
        name = pick_variable(ds, self.variable)
        axis = frequency_axis(ds)
        resid = self.mean_residual(ds, name, axis.width_mhz)
        peaks = find_peaks(resid, self.nsigma, self.min_height)
        freq = axis.values_mhz
        order = np.argsort(freq)
        combs = find_combs(freq[order], resid[order], np.sort(np.argsort(order)[peaks]),
                           period_range_mhz=self.period_range_mhz, z_min=self.z_min,
                           min_teeth=self.min_teeth, tolerance_mhz=self.tolerance_mhz,
                           max_combs=self.max_combs)
        combs.sort(key=lambda c: -c["period"])
        mask = comb_mask(freq, combs, self.mask_halfwidth_mhz)
        out = ds.copy()
        units = ds[name].attrs.get("units", "")
        out["rfi_period"] = ("rfi", np.array([c["period"] for c in combs]), {"units": "MHz"})
        out["rfi_offset"] = ("rfi", np.array([c["offset"] for c in combs]),
                             {"units": "MHz", "long_name": "frequency of the first tooth"})
        out["rfi_amplitude"] = ("rfi", np.array([c["amplitude"] for c in combs]),
                                {"units": units, "long_name": "median tooth height (time mean)"})
        out["rfi_teeth"] = ("rfi", np.array([c["teeth"] for c in combs], dtype=np.int64))
        out["rfi_mask"] = ("frequency", mask, {"long_name": "channels of harmonic RFI"})
        if self.update_flag:
            rfi = xr.DataArray(mask, dims="frequency")
            out[FLAG] = (ds[FLAG] | rfi) if FLAG in ds.variables else rfi
        record(out, self.name, __version__, self.params())
        return out

    def plot(self, before: xr.Dataset, after: xr.Dataset):
        """Residual mean spectrum with the masked channels marked, and its delay spectrum."""
        import matplotlib.pyplot as plt

        name = pick_variable(before, self.variable)
        axis = frequency_axis(before)
        resid = self.mean_residual(before, name, axis.width_mhz)
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6.5))
        top.plot(axis.values_mhz, resid, lw=0.5, label="mean spectrum - running median")
        if "rfi_mask" in after:
            m = after["rfi_mask"].values
            top.plot(axis.values_mhz[m], resid[m], ".", ms=2, color="C3", label="masked")
        top.set(xlabel="frequency (MHz)", ylabel=before[name].attrs.get("units", ""),
                title="harmonic-rfi: periods " + ", ".join(
                    f"{p:.3g}" for p in after.get("rfi_period", xr.DataArray([])).values) + " MHz")
        top.legend(loc="upper right")
        tau = axis.delays_us()
        bottom.semilogy(tau[1:], np.abs(np.fft.rfft(np.nan_to_num(resid)))[1:], lw=0.5)
        bottom.set(xlabel="delay tau (us)", ylabel="|rfft|", xlim=(0, min(5.0, tau[-1])))
        fig.tight_layout()
        return fig
