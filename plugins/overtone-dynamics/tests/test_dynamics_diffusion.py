"""DSE and DSMI against closed forms, a straightforward float64 reference and (when installed)
the authors' reference package ``dse-dsmi``."""

from __future__ import annotations

import importlib.util
import math
import random

import numpy as np
import pytest
import xarray as xr
from dynamics_testing import with_steps
from matplotlib.figure import Figure
from overtone_dynamics.diffusion import (
    DSE,
    DSMI,
    bin_scalar,
    diffusion_spectral_entropy,
    subsample_indices,
)


def reference_dse(x: np.ndarray, sigma: float, t: float) -> float:
    """Straightforward float64 DSE: the non-symmetric P = D^-1 G and its eigenvalues."""
    d2 = np.sum((x[:, None, :] - x[None, :, :]) ** 2, axis=-1)
    g = np.exp(-d2 / (2 * sigma**2)) / (sigma * np.sqrt(2 * np.pi))
    p_matrix = g / g.sum(axis=1, keepdims=True)
    lam = np.abs(np.linalg.eigvals(p_matrix)) ** t
    prob = lam / lam.sum()
    prob = prob[prob > 0]
    return float(-np.sum(prob * np.log2(prob)))


def clusters(k: int, per: int, spread: float, d: int = 8, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) * 1000.0
    return np.repeat(centres, per, axis=0) + spread * rng.normal(size=(k * per, d))


def test_far_apart_points_give_log_n():
    # the kernel is the identity: n eigenvalues equal to 1
    x = np.arange(50)[:, None] * 100.0 * np.ones((1, 3))
    assert diffusion_spectral_entropy(x, sigma=1.0) == pytest.approx(math.log2(50), abs=1e-12)


@pytest.mark.parametrize("k", [2, 5])
def test_tight_separated_clusters_give_log_k(k):
    assert diffusion_spectral_entropy(clusters(k, 30, 0.0), sigma=10.0) == pytest.approx(
        math.log2(k), abs=1e-9)
    # with spread inside the clusters the small eigenvalues die out as t grows
    noisy = clusters(k, 30, 3.0, seed=1)
    h1 = diffusion_spectral_entropy(noisy, sigma=10.0, t=1)
    h_large = diffusion_spectral_entropy(noisy, sigma=10.0, t=200)
    assert h1 > math.log2(k) + 0.05
    assert h_large == pytest.approx(math.log2(k), abs=1e-3)


def test_identical_points_give_zero():
    assert diffusion_spectral_entropy(np.ones((20, 4))) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("sigma,t", [(10.0, 1), (2.0, 1), (2.0, 3)])
def test_matches_straightforward_reference(sigma, t, rng):
    x = rng.normal(size=(150, 6)) * 2.0
    assert diffusion_spectral_entropy(x, sigma, t) == pytest.approx(reference_dse(x, sigma, t), abs=1e-9)
    assert diffusion_spectral_entropy(x, sigma, t, precision="float32") == pytest.approx(
        reference_dse(x, sigma, t), abs=1e-3)


def test_lanczos_approximates_exact(rng):
    x = rng.normal(size=(600, 16)) * 3.0
    exact = diffusion_spectral_entropy(x, 10.0)
    fast = diffusion_spectral_entropy(x, 10.0, method="lanczos", probes=32, lanczos_steps=60)
    assert fast == pytest.approx(exact, rel=0.03)


@pytest.mark.skipif(importlib.util.find_spec("dse_dsmi") is None,
                    reason="peer check: the reference package dse-dsmi is not installed")
def test_side_by_side_with_reference_package(rng):
    from dse_dsmi import diffusion_spectral_entropy as peer
    from dse_dsmi import diffusion_spectral_mutual_information as peer_mi

    x = rng.uniform(0, 1, (400, 64))
    assert diffusion_spectral_entropy(x) == pytest.approx(peer(x), abs=1e-8)
    assert diffusion_spectral_entropy(x, t=2) == pytest.approx(peer(x, t=2), abs=1e-8)
    labels = rng.integers(0, 4, 400)
    ds = xr.Dataset({"hidden": (("sample", "dim"), x), "labels": ("sample", labels)})
    ours = float(DSMI()(ds)["dsmi"])
    theirs, _ = peer_mi(x, labels.reshape(-1, 1))
    assert ours == pytest.approx(theirs, abs=1e-8)


def test_subsample_is_the_reference_draw():
    expected = np.array(random.Random(0).sample(range(50), k=10))
    np.testing.assert_array_equal(subsample_indices(50, 10, 0), expected)
    np.testing.assert_array_equal(subsample_indices(5, 10, 0), np.arange(5))


def test_analyzer_over_steps_with_subsampling_and_plot(rng):
    xs = [clusters(2, 30, 0.0), clusters(4, 15, 0.0)]
    dse = DSE(max_samples=40)
    result = dse(with_steps(xs, ("sample", "dim"), "hidden"))
    assert result["dse"].dims == ("step",)
    assert result["dse"].attrs["units"] == "bits"
    assert result.attrs["n_samples"] == 40
    assert result["dse"].values[0] == pytest.approx(1.0, abs=1e-9)
    assert result["dse"].values[1] == pytest.approx(2.0, abs=1e-9)
    assert isinstance(dse.plot(result), Figure)
    nats = DSE(base=math.e)(xr.Dataset({"hidden": (("sample", "dim"), xs[1])}))
    assert float(nats["dse"]) == pytest.approx(math.log(4), abs=1e-9)
    assert nats["dse"].attrs["units"] == "nats"


def test_dsmi_of_clusters_that_are_the_classes():
    # each class is one tight cluster: DSE(X | Y = c) = 0, DSE of a random subset = log2(4)
    x = clusters(4, 40, 0.0)
    y = np.repeat(np.arange(4), 40)
    ds = xr.Dataset({"hidden": (("sample", "dim"), x), "labels": ("sample", y)})
    result = DSMI()(ds)
    assert float(result["dsmi"]) == pytest.approx(2.0, abs=1e-9)
    np.testing.assert_allclose(result["conditional_dse"].values, 0.0, atol=1e-9)
    shuffled = ds.assign(labels=("sample", np.random.default_rng(0).permutation(y)))
    assert abs(float(DSMI()(shuffled)["dsmi"])) < 0.3


def test_dsmi_with_continuous_reference_bins_and_plot(rng):
    values = np.array([0.0, 0.05, 0.1, 0.55, 1.0])
    np.testing.assert_array_equal(bin_scalar(values, 10), [1, 1, 2, 6, 10])
    x = clusters(2, 20, 0.0)
    target = np.repeat([0.1, 0.9], 20) + 0.01 * rng.normal(size=40)
    ds = with_steps([x, x], ("sample", "dim"), "hidden")
    ds["labels"] = ("sample", target)
    dsmi = DSMI()
    result = dsmi(ds)
    assert result.attrs["reference_kind"] == "binned"
    np.testing.assert_allclose(result["dsmi"].values, 1.0, atol=1e-9)
    assert isinstance(dsmi.plot(result), Figure)


def test_dsmi_subsamples_each_entropy_like_the_reference():
    # each DSE call keeps at most max_samples points (the reference's per-call max_N)
    x = clusters(4, 40, 0.0)
    y = np.repeat(np.arange(4), 40)
    ds = xr.Dataset({"hidden": (("sample", "dim"), x), "labels": ("sample", y)})
    result = DSMI(max_samples=20)(ds)
    assert result.attrs["n_samples"] == 160
    assert float(result["dsmi"]) == pytest.approx(2.0, abs=1e-9)
