"""embedding-fourier and grid-error-spectrum against closed forms and direct DFT sums."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from dynamics_testing import planted_embedding, with_steps
from matplotlib.figure import Figure
from overtone_dynamics.fourier import EmbeddingFourier, GridErrorSpectrum, modular_targets


def real_basis_power(w: np.ndarray) -> np.ndarray:
    """Reference: squared projections on the real Fourier basis (cos, sin of 2 pi k n / p,
    unit-normalised), summed over columns; the constant basis vector for k = 0."""
    p = w.shape[0]
    n = np.arange(p)
    out = np.zeros(p // 2 + 1)
    out[0] = np.sum((np.ones(p) / np.sqrt(p) @ w) ** 2)
    for k in range(1, p // 2 + 1):
        for wave in (np.cos(2 * np.pi * k * n / p), np.sin(2 * np.pi * k * n / p)):
            norm = np.linalg.norm(wave)
            if norm > 1e-9:
                out[k] += np.sum((wave / norm @ w) ** 2)
    return out


@pytest.mark.parametrize("p", [97, 12])
def test_power_equals_real_fourier_basis_projection(p, rng):
    w = rng.normal(size=(p, 7))
    result = EmbeddingFourier(exclude_dc=False)(xr.Dataset({"embeddings": (("token", "dim"), w)}))
    np.testing.assert_allclose(result["power"].values, real_basis_power(w), rtol=1e-10)
    # Parseval: the power sums to the squared Frobenius norm
    assert result["power"].sum() == pytest.approx(np.sum(w**2), rel=1e-12)


def test_planted_key_frequencies_hold_all_power():
    keys = [3, 14, 41]
    w = planted_embedding(97, 64, keys)
    result = EmbeddingFourier(n_keys=3)(xr.Dataset({"embeddings": (("token", "dim"), w)}))
    assert set(result["key_frequency"].values.tolist()) == set(keys)
    assert float(result["key_fraction"]) == pytest.approx(1.0, abs=1e-12)
    # each key frequency has a unit cos and sin wave of equal norm: a third of the power each
    np.testing.assert_allclose(result["fraction"].sel(frequency=keys).values, 1 / 3, atol=1e-12)
    assert result["power"].attrs["units"] and result["frequency"].dims == ("frequency",)


def test_steps_extra_tokens_and_plot():
    p = 31
    w1 = planted_embedding(p, 16, [2], noise=0.01, seed=1)
    w2 = planted_embedding(p, 16, [5, 9], noise=0.01, seed=2)
    extra = np.full((2, 16), 50.0)  # e.g. '=' and op tokens, not numbers
    ds = with_steps([np.vstack([w1, extra]), np.vstack([w2, extra])], ("token", "dim"), "embeddings")
    ds.attrs["p"] = p
    result = EmbeddingFourier(n_keys=2)(ds)
    assert result["step"].values.tolist() == [0, 100]
    assert result["key_frequency"].isel(step=0).values[0] == 2
    assert set(result["key_frequency"].isel(step=1).values.tolist()) == {5, 9}
    assert float(result["key_fraction"].isel(step=1)) > 0.99
    assert result.attrs["p"] == p
    assert isinstance(EmbeddingFourier().plot(result), Figure)


def test_modular_targets_match_brute_force():
    p = 7
    for op, f in {"+": lambda a, b: (a + b) % p, "-": lambda a, b: (a - b) % p,
                  "*": lambda a, b: (a * b) % p}.items():
        expected = np.array([[f(a, b) for b in range(p)] for a in range(p)])
        np.testing.assert_array_equal(modular_targets(p, op), expected)
    div = modular_targets(p, "/")
    for a in range(p):
        for b in range(1, p):
            assert (div[a, b] * b) % p == a


def test_planted_error_spectrum_is_one_frequency():
    p, eps, k = 11, 0.05, (2, 3)
    a, b = np.meshgrid(np.arange(p), np.arange(p), indexing="ij")
    targets = modular_targets(p, "+")
    q = np.eye(p)[targets].astype(float)
    q[:, :, 0] += eps * np.cos(2 * np.pi * (k[0] * a + k[1] * b) / p)
    ds = xr.Dataset({"outputs": (("a", "b", "class"), q)}, attrs={"op": "+"})
    result = GridErrorSpectrum(output="probabilities")(ds)
    power = result["power"].values
    expected = np.zeros((p, p))
    expected[k] = expected[(p - k[0]) % p, (p - k[1]) % p] = eps**2 * p**2 / 4
    np.testing.assert_allclose(power, expected, atol=1e-15)
    assert float(result["total_error"]) == pytest.approx(eps**2 * p**2 / 2, rel=1e-12)
    radius = int(np.rint(np.hypot(2, 3)))
    assert float(result["radial_power"].sel(radius=radius)) == pytest.approx(eps**2 * p**2 / 2)


def test_loss_error_matches_direct_dft_and_scores_equal_probabilities(rng):
    p = 7
    scores = rng.normal(size=(p, p, p))
    probs = np.exp(scores) / np.exp(scores).sum(-1, keepdims=True)
    ds_scores = xr.Dataset({"outputs": (("a", "b", "class"), scores)}, attrs={"output": "scores"})
    ds_probs = xr.Dataset({"outputs": (("a", "b", "class"), probs)}, attrs={"output": "probabilities"})
    r_scores = GridErrorSpectrum(op="-", error="loss")(ds_scores)
    r_probs = GridErrorSpectrum(op="-", error="loss")(ds_probs)
    np.testing.assert_allclose(r_scores["power"].values, r_probs["power"].values, rtol=1e-10)
    # reference: the DFT written out as a double sum
    targets = modular_targets(p, "-")
    e = -np.log(np.take_along_axis(probs, targets[..., None], -1)[..., 0])
    ref = np.zeros((p, p))
    n = np.arange(p)
    for ka in range(p):
        for kb in range(p):
            phase = np.exp(-2j * np.pi * (ka * n[:, None] + kb * n[None, :]) / p)
            ref[ka, kb] = abs(np.sum(e * phase)) ** 2 / p**2
    np.testing.assert_allclose(r_probs["power"].values, ref, rtol=1e-9, atol=1e-14)
    assert float(r_probs["accuracy"]) == pytest.approx(np.mean(probs.argmax(-1) == targets))


def test_error_falls_over_steps_and_plot():
    p = 13
    targets = modular_targets(p, "*")
    onehot = np.eye(p)[targets]
    uniform = np.full((p, p, p), 1 / p)
    steps = [uniform * (1 - s) + onehot * s for s in (0.0, 0.5, 0.99)]
    ds = with_steps(steps, ("a", "b", "class"), "outputs")
    ds["outputs"].attrs["output"] = "probabilities"
    ds.attrs["op"] = "*"
    gf = GridErrorSpectrum()
    result = gf(ds)
    total = result["total_error"].values
    assert total[0] > total[1] > total[2]
    assert result["radial_power"].dims == ("step", "radius")
    assert isinstance(gf.plot(result), Figure)


def test_division_leaves_out_the_undefined_column():
    p = 7
    targets = modular_targets(p, "/")
    q = np.eye(p)[targets]
    q[:, 0, :] = 1.0 / p  # whatever the network says about a / 0
    ds = xr.Dataset({"outputs": (("a", "b", "class"), q, {"output": "probabilities"})},
                    attrs={"op": "/", "p": p})
    result = GridErrorSpectrum()(ds)
    assert float(result["total_error"]) == pytest.approx(0.0, abs=1e-24)
    assert float(result["accuracy"]) == 1.0


def test_old_name_grokking_frequency_warns_and_gives_the_same_result(rng):
    import overtone
    from overtone_dynamics.fourier import GrokkingFrequency

    p = 7
    scores = rng.normal(size=(p, p, p))
    ds = xr.Dataset({"outputs": (("a", "b", "class"), scores, {"output": "scores"})}, attrs={"op": "+"})
    with pytest.warns(FutureWarning, match="renamed 'grid-error-spectrum'"):
        old = GrokkingFrequency(error="loss")
    np.testing.assert_array_equal(old(ds)["power"].values, GridErrorSpectrum(error="loss")(ds)["power"].values)
    component = overtone.registry().get("analyzer", "grokking-frequency")
    assert component.load() is GrokkingFrequency
