"""Before/after figures: the spectrum, what was removed, and the delay spectrum |rfft|."""

from __future__ import annotations

import numpy as np
import xarray as xr

from overtone_radio.spectra import frequency_axis, pick_variable


def _mean_spectrum(ds: xr.Dataset, name: str, n: int) -> np.ndarray:
    data = ds[name]
    others = [d for d in data.dims if d != "frequency"]
    if others:
        data = data.isel({others[0]: slice(0, n)}).mean([d for d in others])
    return np.asarray(data.values, dtype=np.float64)


def before_after(before: xr.Dataset, after: xr.Dataset, variable: str | None, *,
                 title: str, n_spectra: int = 16):
    """Figure of the mean of the first ``n_spectra`` spectra: before and after (top), the
    difference before - after, i.e. what the step removed (middle), and the amplitude of
    their rfft along frequency against delay tau in us (bottom)."""
    import matplotlib.pyplot as plt

    name = pick_variable(before, variable)
    axis = frequency_axis(before)
    fig, (top, middle, bottom) = plt.subplots(3, 1, figsize=(9, 9), sharex=False)
    tau = axis.delays_us()
    means = {}
    for ds, label, alpha in ((before, "before", 0.6), (after, "after", 0.8)):
        spec = means[label] = _mean_spectrum(ds, name, n_spectra)
        top.plot(axis.values_mhz, spec, lw=0.5, alpha=alpha, label=label)
        clean = np.nan_to_num(spec - np.nanmean(spec))
        bottom.semilogy(tau[1:], np.abs(np.fft.rfft(clean))[1:], lw=0.5, alpha=alpha, label=label)
    units = before[name].attrs.get("units", "")
    ylabel = f"{name} ({units})" if units else name
    top.set(xlabel="frequency (MHz)", ylabel=ylabel,
            title=f"{title}: mean of the first {n_spectra} spectra")
    middle.plot(axis.values_mhz, means["before"] - means["after"], lw=0.5, color="C3")
    middle.axhline(0.0, color="0.5", lw=0.5)
    middle.set(xlabel="frequency (MHz)", ylabel=f"removed ({units})" if units else "removed",
               title="before - after")
    bottom.set(xlabel="delay tau (us)", ylabel="|rfft|", xlim=(0, min(5.0, tau[-1])))
    top.legend(loc="upper right")
    bottom.legend(loc="upper right")
    fig.tight_layout()
    return fig
