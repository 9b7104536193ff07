"""Before/after figures: the spectrum, what was removed, and the delay spectrum |rfft|.

What a radio astronomer needs to read them: the title says which spectra were averaged; the
y-limits come from robust percentiles of the channels that are neither protected nor flagged
(an edge spike or a bright line does not squash the baseline); protected channels (lines,
ranges, masks) and flagged ones (junk edges, RFI) are shaded; the delay windows of
``fft-standing-wave`` are shaded on the delay axis; a step that changed nothing says so
instead of plotting round-off; with a ``velocity`` coordinate along ``frequency`` a velocity
axis is drawn on top.
"""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

from overtone_radio.protect import runs
from overtone_radio.spectra import FLAG, SOURCE_MASK, frequency_axis, pick_variable

MAX_SPANS = 200  # shaded runs per kind (more would only slow the figure down)


def _mean_spectrum(ds: xr.Dataset, name: str, n: int) -> tuple[np.ndarray, str]:
    """Mean of the first ``n`` spectra along the first non-frequency dim (and the mean over
    any other dims), and a phrase saying so."""
    data = ds[name]
    others = [d for d in data.dims if d != "frequency"]
    if not others:
        return np.asarray(data.values, dtype=np.float64), "one spectrum"
    first = others[0]
    used = min(n, data.sizes[first])
    rest = [f"all {data.sizes[d]} {d}" for d in others[1:]]
    what = f"mean of the first {used} of {data.sizes[first]} spectra along {first}"
    if rest:
        what += " and " + ", ".join(rest)
    mean = data.isel({first: slice(0, n)}).mean(others)
    return np.asarray(mean.values, dtype=np.float64), what


def _channel_mask(ds: xr.Dataset, name: str) -> np.ndarray:
    """Channels protected or flagged in any spectrum, as one (frequency,) mask."""
    mask = np.zeros(ds.sizes["frequency"], bool)
    for key in ("sw_protected", SOURCE_MASK, FLAG):
        if key in ds.variables and ds[key].dtype == bool and "frequency" in ds[key].dims:
            m = ds[key]
            others = [d for d in m.dims if d != "frequency"]
            mask |= np.asarray((m.any(others) if others else m).values, bool)
    return mask


def _shade(ax, freq: np.ndarray, mask: np.ndarray, color: str, label: str) -> None:
    """Shade the runs of ``mask`` along ``freq`` (label once)."""
    for i, (a, b) in enumerate(runs(mask)[:MAX_SPANS]):
        lo, hi = sorted((freq[a], freq[b - 1]))
        ax.axvspan(lo, hi, color=color, alpha=0.15, lw=0, label=label if i == 0 else None)


def robust_limits(y: np.ndarray, skip: np.ndarray | None = None) -> tuple[float, float]:
    """y-limits from the 0.5 and 99.5 percentiles of the finite ``y`` outside ``skip``,
    widened by 15% of their spread (all finite values when ``skip`` leaves too few)."""
    ok = np.isfinite(y)
    if skip is not None and (ok & ~skip).sum() >= 16:
        ok &= ~skip
    if not ok.any():
        return -1.0, 1.0
    lo, hi = np.percentile(y[ok], [0.5, 99.5])
    pad = 0.15 * (hi - lo) if hi > lo else max(abs(hi), 1.0) * 0.1
    return float(lo - pad), float(hi + pad)


def _velocity_axis(ax, ds: xr.Dataset) -> None:
    """A velocity axis on top when ``ds`` has a ``velocity`` coordinate along frequency."""
    if "velocity" not in ds.coords or ds["velocity"].dims != ("frequency",):
        return
    f = frequency_axis(ds).values_mhz
    v = np.asarray(ds["velocity"].values, dtype=np.float64)
    order = np.argsort(f)
    fs, vs = f[order], v[order]
    vorder = np.argsort(vs)
    top = ax.secondary_xaxis("top", functions=(lambda x: np.interp(x, fs, vs),
                                               lambda x: np.interp(x, vs[vorder], fs[vorder])))
    top.set_xlabel(f"velocity ({ds['velocity'].attrs.get('units', 'km/s')})")


def before_after(before: xr.Dataset, after: xr.Dataset, variable: str | None, *,
                 title: str, n_spectra: int = 16):
    """Figure of the mean of the first ``n_spectra`` spectra: before and after (top), the
    difference before - after, i.e. what the step removed (middle), and the amplitude of
    their rfft along frequency against delay tau in us (bottom); see the module docstring."""
    import matplotlib.pyplot as plt

    name = pick_variable(before, variable)
    axis_b, axis_a = frequency_axis(before, uniform=False), frequency_axis(after, uniform=False)
    fig, (top, middle, bottom) = plt.subplots(3, 1, figsize=(9, 9.5), sharex=False)
    spec_b, what = _mean_spectrum(before, name, n_spectra)
    spec_a, _ = _mean_spectrum(after, name, n_spectra)
    skip = _channel_mask(after, name) if after.sizes["frequency"] == axis_b.n else \
        _channel_mask(before, name)
    top.plot(axis_b.values_mhz, spec_b, lw=0.5, alpha=0.6, label="before")
    top.plot(axis_a.values_mhz, spec_a, lw=0.5, alpha=0.8, label="after")
    units = before[name].attrs.get("units", "")
    ylabel = f"{name} ({units})" if units else name
    both = np.concatenate([spec_b[~skip] if skip.size == spec_b.size else spec_b, spec_a])
    top.set_ylim(*robust_limits(both))
    flagged = np.zeros(axis_b.n, bool)
    if FLAG in after.variables and after.sizes["frequency"] == axis_b.n:
        m = after[FLAG]
        flagged = np.asarray((m.any([d for d in m.dims if d != "frequency"])
                              if m.ndim > 1 else m).values, bool)
    _shade(top, axis_b.values_mhz, skip & ~flagged, "C2", "protected")
    _shade(top, axis_b.values_mhz, flagged, "C3", "flagged")
    top.set(xlabel="frequency (MHz)", ylabel=ylabel, title=f"{title}: {what}")
    _velocity_axis(top, before)
    if spec_a.size == spec_b.size:
        removed = spec_b - spec_a
        scale = np.nanmax(np.abs(spec_b)) if np.isfinite(spec_b).any() else 1.0
        if not np.isfinite(removed).any() or np.nanmax(np.abs(removed)) <= 1e-6 * scale:
            middle.text(0.5, 0.5, "nothing removed (differences at float round-off)",
                        ha="center", va="center", transform=middle.transAxes)
        else:
            middle.plot(axis_b.values_mhz, removed, lw=0.5, color="C3")
            middle.set_ylim(*robust_limits(removed))
        middle.axhline(0.0, color="0.5", lw=0.5)
        middle.set(xlabel="frequency (MHz)", ylabel=f"removed ({units})" if units else "removed",
                   title="before - after")
    else:
        middle.text(0.5, 0.5, f"{axis_b.n} channels -> {axis_a.n} (binned): no difference "
                    "spectrum", ha="center", va="center", transform=middle.transAxes)
    for spec, axis, label, alpha in ((spec_b, axis_b, "before", 0.6),
                                     (spec_a, axis_a, "after", 0.8)):
        clean = np.nan_to_num(spec - np.nanmean(spec))
        tau = np.fft.rfftfreq(axis.n, abs(axis.values_mhz[1] - axis.values_mhz[0]))
        bottom.semilogy(tau[1:], np.abs(np.fft.rfft(clean))[1:] + 1e-30, lw=0.5, alpha=alpha,
                        label=label)
    windows = json.loads(after[name].attrs.get("sw_windows_us", "[]"))
    tau_max = np.fft.rfftfreq(axis_b.n, axis_b.width_mhz)[-1]
    upper = min(5.0, tau_max)
    if windows:
        upper = min(tau_max, max(upper, 1.1 * max(hi for _, hi in windows)))
    for i, (lo, hi) in enumerate(windows):
        bottom.axvspan(lo, hi, color="C1", alpha=0.2, lw=0,
                       label="delay windows" if i == 0 else None)
    bottom.set(xlabel="delay tau (us)", ylabel="|rfft|", xlim=(0, upper),
               xscale="symlog" if upper > 10 else "linear")
    top.legend(loc="upper right", fontsize="small")
    bottom.legend(loc="upper right", fontsize="small")
    fig.tight_layout()
    return fig
