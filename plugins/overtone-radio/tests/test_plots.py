"""What the before/after figures show: windows shaded, channels marked, robust limits,
"nothing removed", a velocity axis, and a title that says what was averaged."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from overtone_radio.channels import Smooth  # noqa: E402
from overtone_radio.fftfilter import FFTStandingWave  # noqa: E402
from overtone_radio.plotting import robust_limits  # noqa: E402
from overtone_radio.simulate import Observation, simulate  # noqa: E402


def _texts(fig) -> str:
    return " ".join([a.get_title() for a in fig.axes]
                    + [t.get_text() for a in fig.axes for t in a.texts]
                    + [t.get_text() for a in fig.axes for t in
                       (a.get_legend().get_texts() if a.get_legend() else [])])


def test_filter_plot_shades_windows_and_marks_protected_channels():
    ds = simulate(Observation(n_time=20, nchan=8192, f_start_mhz=1380.0)).compute()
    ds["spectrum"][:, :3] = 500.0  # an edge spike far above the band
    ds = ds.assign_coords(velocity=("frequency", 299792.458 * (1420.405751 / ds.frequency.values - 1),
                                    {"units": "km/s"}))
    f = FFTStandingWave()
    after = f(ds)
    fig = f.plot(ds, after)
    text = _texts(fig)
    assert "mean of the first 16 of 20 spectra along time" in text
    assert "delay windows" in text and "protected" in text
    top = fig.axes[0]
    lo, hi = top.get_ylim()
    assert hi < 100, (lo, hi)  # the 500 K spike does not set the scale
    assert any("velocity" in c.get_xlabel() for a in fig.axes for c in [a, *a.child_axes])


def test_nothing_removed_is_said_and_binned_output_plots():
    rng = np.random.default_rng(0)
    ds = xr.Dataset({"spectrum": (("time", "frequency"), rng.normal(size=(4, 4096)).astype(np.float32))},
                    coords={"frequency": ("frequency", 1400 + 0.01 * np.arange(4096), {"units": "MHz"})})
    f = FFTStandingWave(telescope="none")
    fig = f.plot(ds, f(ds))
    assert "nothing removed" in _texts(fig)
    s = Smooth(kernel="boxcar", channels=4, decimate=True)
    assert "binned" in _texts(s.plot(ds, s(ds)))


def test_robust_limits_ignore_skipped_channels_and_spikes():
    y = np.zeros(1000)
    y[:5] = 1e4
    lo, hi = robust_limits(y + np.random.default_rng(1).normal(size=1000))
    assert hi < 100
    skip = np.zeros(1000, bool)
    skip[:5] = True
    assert robust_limits(y, skip)[1] < 1
