"""pca-structure and effective-rank against closed forms and a float64 covariance reference."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from dynamics_testing import with_steps
from matplotlib.figure import Figure
from overtone_dynamics.spectrum import EffectiveRank, PCAStructure


def planted(n: int, d: int, singular: list[float], seed: int = 0) -> np.ndarray:
    """X = U diag(s) V^T with U orthonormal and orthogonal to the ones vector (X is centred),
    so its covariance eigenvalues are exactly s^2 / (n - 1)."""
    rng = np.random.default_rng(seed)
    k = len(singular)
    basis, _ = np.linalg.qr(np.column_stack([np.ones(n), rng.normal(size=(n, k))]))
    u = basis[:, 1:]
    v, _ = np.linalg.qr(rng.normal(size=(d, k)))
    return u @ np.diag(singular) @ v.T


def test_pca_ratios_of_planted_spectrum():
    s = np.array([5.0, 3.0, 1.0, 0.5])
    x = planted(200, 30, s.tolist()) + 7.0  # an offset must not matter
    result = PCAStructure(n_components=6, top=2)(xr.Dataset({"hidden": (("sample", "dim"), x)}))
    expected = np.zeros(6)
    expected[:4] = s**2 / np.sum(s**2)
    np.testing.assert_allclose(result["explained_variance_ratio"].values, expected, atol=1e-12)
    np.testing.assert_allclose(result["explained_variance"].values[:4], s**2 / 199, rtol=1e-10)
    assert float(result["top_fraction"]) == pytest.approx((25 + 9) / np.sum(s**2))
    assert result["component"].values.tolist() == [1, 2, 3, 4, 5, 6]


def test_pca_matches_numpy_covariance_over_steps(rng):
    xs = [rng.normal(size=(80, 12)) @ rng.normal(size=(12, 12)) for _ in range(3)]
    result = PCAStructure(n_components=12)(with_steps(xs, ("sample", "dim"), "hidden"))
    for i, x in enumerate(xs):
        eig = np.sort(np.linalg.eigvalsh(np.cov(x, rowvar=False)))[::-1]
        np.testing.assert_allclose(result["explained_variance"].isel(step=i).values, eig, rtol=1e-9)
    assert isinstance(PCAStructure().plot(result), Figure)


@pytest.mark.parametrize("k", [1, 3, 8])
def test_effective_rank_of_k_equal_eigenvalues(k):
    x = planted(100, 20, [2.0] * k)
    result = EffectiveRank()(xr.Dataset({"hidden": (("sample", "dim"), x)}))
    assert float(result["participation_ratio"]) == pytest.approx(k, rel=1e-10)
    assert float(result["entropy_rank"]) == pytest.approx(k, rel=1e-10)


def test_effective_rank_matches_reference_formula(rng):
    x = rng.normal(size=(60, 10)) * np.arange(1, 11)
    eig = np.linalg.eigvalsh(np.cov(x, rowvar=False))
    p = eig / eig.sum()
    result = EffectiveRank()(with_steps([x, x[::-1]], ("sample", "dim"), "embeddings"))
    np.testing.assert_allclose(result["participation_ratio"].values, eig.sum() ** 2 / np.sum(eig**2))
    np.testing.assert_allclose(result["entropy_rank"].values, np.exp(-np.sum(p * np.log(p))))
    assert result["participation_ratio"].attrs["units"] == "dimensions"
    assert isinstance(EffectiveRank().plot(result), Figure)
