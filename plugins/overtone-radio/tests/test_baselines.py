"""The comparison methods against independent references."""

from __future__ import annotations

import numpy as np
import xarray as xr
from overtone_radio.baselines import RunningMedian, sine_fit


def test_sine_fit_removes_a_sinusoid_it_can_model():
    """sine + line with tau inside the grid: the fit leaves the line and nothing else."""
    step = 500 / 65536
    f = 1400 + step * np.arange(4096)
    tau = 0.92  # a grid point of linspace(0.88, 0.97, 46)
    line = 20 + 0.01 * (f - f[0])
    x = (line + 0.08 * np.cos(2 * np.pi * tau * f + 0.4))[None]
    out = sine_fit(x, None, freq_mhz=f, segment_mhz=10.0)
    np.testing.assert_allclose(out[0], line, atol=2e-4)


def test_running_median_matches_a_naive_float64_reference():
    rng = np.random.default_rng(0)
    x = rng.normal(20, 1, (40, 64)).astype(np.float32)
    ds = xr.Dataset({"spectrum": (("time", "frequency"), x)},
                    coords={"frequency": ("frequency", 1400 + 0.01 * np.arange(64), {"units": "MHz"})})
    window = 7
    out = RunningMedian(window=window)(ds)["spectrum"].values
    pad = np.concatenate([np.repeat(x[:1], 3, 0), x, np.repeat(x[-1:], 3, 0)]).astype(np.float64)
    base = np.stack([np.median(pad[t:t + window], axis=0) for t in range(40)])
    ref = x - base + base.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(out, ref, atol=1e-4)
    lazy = RunningMedian(window=window)(ds.chunk({"time": 10}))["spectrum"].values
    np.testing.assert_allclose(lazy, out, atol=1e-5)
