"""frequency-error against numpy's FFT and hand-computed sinusoid amplitudes."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from matplotlib.figure import Figure
from overtone import ConfigError, DatasetError
from overtone_dynamics.frequency import FrequencyError, nudft, principal_direction


def grid(n: int) -> np.ndarray:
    return 2 * np.pi * np.arange(n) / n


def dataset(outputs: list[np.ndarray], targets: np.ndarray, inputs: np.ndarray, steps=None) -> xr.Dataset:
    steps = list(range(0, 100 * len(outputs), 100)) if steps is None else steps
    out_dims = ("step", "sample", *(("output",) if outputs[0].ndim == 2 else ()))
    in_dims = ("sample", *(("input_dim",) if inputs.ndim == 2 else ()))
    return xr.Dataset({"outputs": (out_dims, np.stack(outputs)), "targets": (out_dims[1:], targets),
                       "inputs": (in_dims, inputs)}, coords={"step": steps})


def test_nudft_on_a_uniform_grid_equals_numpy_fft(rng):
    n = 64
    g = rng.normal(size=(3, n))
    k = np.arange(n)
    np.testing.assert_allclose(nudft(grid(n), g, k), np.fft.fft(g, axis=-1) / n, atol=1e-13)


def test_nudft_blocks_over_frequencies(rng, monkeypatch):
    import overtone_dynamics.frequency as module

    t, g, k = rng.uniform(-3, 3, 50), rng.normal(size=50), rng.uniform(0, 9, 37)
    whole = nudft(t, g, k)
    monkeypatch.setattr(module, "_BLOCK", 120)  # two frequencies per block
    np.testing.assert_allclose(nudft(t, g, k), whole, rtol=1e-13)
    reference = np.array([np.mean(g * np.exp(-1j * kk * t)) for kk in k])  # the sum written out
    np.testing.assert_allclose(whole, reference, rtol=1e-12, atol=1e-15)


def test_known_sinusoids_give_exact_relative_errors():
    n = 128
    x = grid(n)
    y = 2 * np.sin(3 * x) + np.cos(7 * x)
    early = 0.5 * np.sin(3 * x) + 0.1 * np.cos(10 * x)  # has 1/4 of k = 3, none of k = 7
    late = 1.5 * np.sin(3 * x) + np.cos(7 * x) + 0.1 * np.cos(10 * x)
    result = FrequencyError(frequencies=[3, 7, 10, 12])(dataset([early, late], y, x))
    # amplitude A of a sinusoid at integer k gives |F(k)| = A / 2: relative error = |dA| / A
    np.testing.assert_allclose(result["relative_error"].sel(frequency=[3, 7]).values,
                               [[0.75, 1.0], [0.25, 0.0]], atol=1e-12)
    # k = 10, 12: no target content, so no relative error; the absolute one is 0.1 / 2 and 0
    assert np.isnan(result["relative_error"].sel(frequency=[10, 12]).values).all()
    np.testing.assert_allclose(result["abs_error"].sel(frequency=[10, 12]).values, [[0.05, 0], [0.05, 0]],
                               atol=1e-12)
    np.testing.assert_allclose(result["target_amplitude"].values, [1.0, 0.5, 0, 0], atol=1e-12)
    assert result["step"].values.tolist() == [0, 100]


def test_vector_inputs_along_the_principal_direction(rng):
    n = 256
    t = grid(n)
    u = np.array([2.0, -1.0, 2.0]) / 3
    v = np.array([1.0, 2.0, 0.0]) / np.sqrt(5)  # orthogonal to u
    tc = t - t.mean()
    s = rng.normal(size=n)
    s -= s.mean() + tc * (s @ tc) / (tc @ tc)  # uncorrelated with t: the principal axis is u
    x = np.outer(t, u) + np.outer(0.1 * s, v)
    np.testing.assert_allclose(principal_direction(x), u, atol=1e-12)
    y = np.stack([np.sin(5 * t), np.cos(5 * t)], 1)  # two outputs
    f = np.stack([0.6 * np.sin(5 * t), 0.6 * np.cos(5 * t)], 1)
    result = FrequencyError(frequencies=[5.0])(dataset([f], y, x))
    np.testing.assert_allclose(result["direction"].values, u, atol=1e-12)
    assert float(result["relative_error"].isel(step=0, frequency=0)) == pytest.approx(0.4, abs=1e-12)
    given = FrequencyError(frequencies=[5.0], direction=list(-3 * u))(dataset([f], y, x))
    assert float(given["relative_error"].isel(step=0, frequency=0)) == pytest.approx(0.4, abs=1e-12)


def test_default_frequencies_plot_and_nonuniform_inputs(rng):
    x = np.sort(rng.uniform(-np.pi, np.pi, 300))
    y = np.sin(x)
    result = FrequencyError(n_frequencies=50, k_max=4.0)(dataset([0 * y, 0.5 * y, y], y, x))
    np.testing.assert_allclose(result["frequency"].values, np.linspace(0, 4, 50))
    rel = result["relative_error"].values
    assert np.nanmax(rel[2]) == pytest.approx(0.0, abs=1e-12)  # exact outputs
    np.testing.assert_allclose(rel[1][~np.isnan(rel[1])], 0.5, rtol=1e-12)  # half of y everywhere
    assert np.all(rel[0][~np.isnan(rel[0])] == pytest.approx(1.0))
    assert isinstance(FrequencyError().plot(result), Figure)


@pytest.mark.parametrize("kwargs, match", [
    ({"n_frequencies": 0}, "n_frequencies"), ({"k_max": 0}, "k_max"),
    ({"direction": "first"}, "direction"), ({"frequencies": []}, "frequencies"),
    ({"floor": 1.5}, "floor"),
])
def test_bad_settings(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        FrequencyError(**kwargs)


def test_bad_data_gets_one_line_errors(rng):
    x = grid(16)
    ds = dataset([np.sin(x)], np.sin(x), x)
    with pytest.raises(DatasetError, match="target_variable="):
        FrequencyError(target_variable="y")(ds)
    with pytest.raises(DatasetError, match="expected \\(16,\\)"):
        FrequencyError()(ds.assign(targets=("other", np.zeros(5))))
    with pytest.raises(ConfigError, match="direction has 2 numbers"):
        FrequencyError(direction=[1.0, 0.0])(dataset([np.sin(x)], np.sin(x), np.stack([x, x, x], 1)))
    bad = ds.copy()
    bad["targets"] = bad["targets"].where(bad.sample != 3)
    with pytest.raises(DatasetError, match="NaN") as info:
        FrequencyError()(bad)
    assert "\n" not in str(info.value)
