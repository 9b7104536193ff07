"""condensation and neural-collapse on planted structures with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from dynamics_testing import with_steps
from matplotlib.figure import Figure
from overtone_dynamics.geometry import Condensation, NeuralCollapse


def test_condensed_weights_have_three_directions(rng):
    directions = rng.normal(size=(3, 20))
    group = np.repeat([0, 1, 2], [10, 15, 5])
    scale = rng.uniform(0.5, 2.0, 30) * rng.choice([-1, 1], 30)
    w = scale[:, None] * directions[group] + 1e-4 * rng.normal(size=(30, 20))
    result = Condensation(threshold=0.99)(xr.Dataset({"weight_fc1": (("out", "in"), w)}))
    assert int(result["n_directions"]) == 3
    same = sum(m * (m - 1) / 2 for m in (10, 15, 5))
    assert float(result["aligned_fraction"]) == pytest.approx(same / (30 * 29 / 2))
    # reference: cosine of each pair written out
    cos = result["cosine"].values
    for i, j in [(0, 1), (3, 17), (12, 29)]:
        ref = w[i] @ w[j] / np.linalg.norm(w[i]) / np.linalg.norm(w[j])
        assert cos[i, j] == pytest.approx(ref, abs=1e-12)


def test_random_weights_are_not_condensed_and_plot(rng):
    ws = [rng.normal(size=(64, 512)) for _ in range(2)]
    cond = Condensation()
    result = cond(with_steps(ws, ("out", "in"), "weight_layer"))
    assert result["aligned_fraction"].values.tolist() == [0.0, 0.0]
    assert result["n_directions"].values.tolist() == [64, 64]
    assert isinstance(cond.plot(result), Figure)


def simplex_etf(c: int, d: int, seed: int = 0) -> np.ndarray:
    """C unit vectors in R^d with pairwise cosine -1/(C-1) (a simplex ETF)."""
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.normal(size=(d, c)))
    m = np.sqrt(c / (c - 1)) * (np.eye(c) - np.ones((c, c)) / c)
    return (basis @ m).T


def collapse_dataset(h, y, w):
    return xr.Dataset({"hidden": (("sample", "dim"), h), "labels": ("sample", y),
                       "weight_head": (("class", "dim"), w)})


def test_collapsed_features_score_zero_random_features_large(rng):
    c, d, per = 5, 12, 40
    means = 3.0 * simplex_etf(c, d)
    y = np.repeat(np.arange(c), per)
    h = means[y] + 1e-6 * rng.normal(size=(c * per, d))
    nc = NeuralCollapse(weight_variable="weight_head")
    collapsed = nc(collapse_dataset(h, y, 0.7 * means))
    for key in ("nc1", "nc2", "nc3", "equinorm", "equiangle"):
        assert float(collapsed[key]) < 1e-5, key
    assert float(collapsed["nc4"]) == 0.0

    h_rand = rng.normal(size=(c * per, d))
    y_rand = rng.permutation(y)
    random = nc(collapse_dataset(h_rand, y_rand, rng.normal(size=(c, d))))
    assert float(random["nc1"]) > 1.0
    assert float(random["nc2"]) > 0.1
    assert float(random["nc3"]) > 0.5
    assert float(random["nc4"]) > 0.3


def test_nc1_matches_per_class_reference(rng):
    c, d = 4, 6
    y = rng.integers(0, c, 300)
    h = rng.normal(size=(300, d)) + 2 * rng.normal(size=(c, d))[y]
    result = NeuralCollapse()(collapse_dataset(h, y, np.ones((c, d))))
    mu = h.mean(0)
    sw = np.zeros((d, d))
    sb = np.zeros((d, d))
    for k in range(c):
        hk = h[y == k]
        sw += (hk - hk.mean(0)).T @ (hk - hk.mean(0))
        sb += np.outer(hk.mean(0) - mu, hk.mean(0) - mu)
    sw /= len(h)
    sb /= c
    ref = np.trace(sw @ np.linalg.pinv(sb)) / c
    assert float(result["nc1"]) == pytest.approx(ref, rel=1e-8)
    assert "nc3" not in result and "weight_variable" in result.attrs["note"]


def test_neural_collapse_over_steps_with_weights_per_step_and_plot(rng):
    c, d, per = 3, 5, 20
    y = np.repeat(np.arange(c), per)
    means = simplex_etf(c, d)
    hs = [means[y] + s * rng.normal(size=(c * per, d)) for s in (1.0, 0.1, 0.01)]
    ds = with_steps(hs, ("sample", "dim"), "hidden")
    ds["labels"] = ("sample", y)
    ds["weight_head"] = (("step", "class", "dim"), np.stack([means] * 3))
    nc = NeuralCollapse(weight_variable="weight_head")
    result = nc(ds)
    nc1 = result["nc1"].values
    assert nc1[0] > nc1[1] > nc1[2]
    assert isinstance(nc.plot(result), Figure)
