"""progress-measures against hand computations on planted logits and a least-squares projection."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from dynamics_testing import planted_embedding
from matplotlib.figure import Figure
from overtone import ConfigError, DatasetError
from overtone_dynamics.progress import ProgressMeasures, gini
from scipy.special import logsumexp


def reference_ce(logits: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Cross-entropy for c = a + b mod p with scipy's logsumexp."""
    p = logits.shape[0]
    a = np.arange(p)
    y = (a[:, None] + a[None, :]) % p
    loss = logsumexp(logits, axis=-1) - logits[a[:, None], a[None, :], y]
    return float(loss[mask].mean() if mask is not None else loss.mean())


def planted(p: int, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Logits = key part (f = 2, 5) + other part (f = 1 on a + b - c, f = 4 on a - b) + class bias."""
    a = np.arange(p)[:, None, None]
    b = np.arange(p)[None, :, None]
    c = np.arange(p)[None, None, :]

    def w(f):
        return 2 * np.pi * f / p

    bias = rng.normal(size=p)[None, None, :]
    keys = 3.0 * np.cos(w(2) * (a + b - c)) + 2.0 * np.cos(w(5) * (a + b - c) + 0.4)
    other = 0.3 * np.cos(w(1) * (a + b - c)) + 0.5 * np.cos(w(4) * (a - b)) * np.ones_like(c)
    return keys + other + bias, keys + bias, other + bias


def dataset(logits: np.ndarray, mask: np.ndarray | None = None, output: str = "scores") -> xr.Dataset:
    ds = xr.Dataset({"outputs": (("step", "a", "b", "class"), logits[None], {"output": output})},
                    coords={"step": [10]}, attrs={"op": "+", "p": logits.shape[0]})
    if mask is not None:
        ds["train_pair"] = (("a", "b"), mask.astype(np.int8))
    return ds


def test_planted_logits_give_hand_computed_keys_and_losses(rng):
    p = 13
    logits, restricted, excluded = planted(p, rng)
    mask = rng.random((p, p)) < 0.4
    result = ProgressMeasures(n_keys=2)(dataset(logits, mask))
    assert sorted(result["key_frequency"].values.tolist()) == [2, 5]
    r = result.isel(step=0)
    assert float(r["restricted_loss"]) == pytest.approx(reference_ce(restricted), rel=1e-12)
    assert float(r["excluded_loss"]) == pytest.approx(reference_ce(excluded, mask), rel=1e-12)
    assert float(r["train_loss"]) == pytest.approx(reference_ce(logits, mask), rel=1e-12)
    assert float(r["test_loss"]) == pytest.approx(reference_ce(logits, ~mask), rel=1e-12)
    # shares of the class-centred norm: f = 2 carries 9/2 p^3, f = 5 4/2 p^3, f = 1 0.09/2 p^3;
    # the f = 4 term on (a - b) is the same for every class, so centring over classes removes it
    total = (9 + 4 + 0.09) / 2
    np.testing.assert_allclose(r["logit_fraction"].sel(frequency=[2, 5, 1, 4]).values,
                               [4.5 / total, 2 / total, 0.045 / total, 0], atol=1e-12)
    assert float(r["key_logit_fraction"]) == pytest.approx(6.5 / total, rel=1e-12)


def test_log_probabilities_give_the_same_losses(rng):
    p = 13
    logits, _, _ = planted(p, rng)
    mask = rng.random((p, p)) < 0.5
    probs = np.exp(logits - logsumexp(logits, axis=-1, keepdims=True))
    from_scores = ProgressMeasures(n_keys=2)(dataset(logits, mask))
    from_probs = ProgressMeasures(n_keys=2)(dataset(probs, mask, output="probabilities"))
    for name in ("restricted_loss", "excluded_loss", "train_loss", "test_loss"):
        np.testing.assert_allclose(from_probs[name].values, from_scores[name].values, rtol=1e-10)


def test_restricted_logits_equal_a_least_squares_projection(rng):
    p, keys = 11, [1, 3]
    logits = rng.normal(size=(p, p, p)) * 2
    s = (np.arange(p)[:, None] + np.arange(p)[None, :]).ravel()
    basis = np.stack([np.ones(p * p)] + [f(2 * np.pi * k * s / p) for k in keys for f in (np.cos, np.sin)], 1)
    coef, *_ = np.linalg.lstsq(basis, logits.reshape(p * p, p), rcond=None)
    projected = (basis @ coef).reshape(p, p, p)
    coef_keys = coef.copy()
    coef_keys[0] = 0
    excluded = logits - (basis @ coef_keys).reshape(p, p, p)
    mask = rng.random((p, p)) < 0.3
    result = ProgressMeasures(key_frequencies=keys)(dataset(logits, mask)).isel(step=0)
    assert float(result["restricted_loss"]) == pytest.approx(reference_ce(projected), rel=1e-10)
    assert float(result["excluded_loss"]) == pytest.approx(reference_ce(excluded, mask), rel=1e-10)


def test_noise_network_restricted_loss_is_near_log_p(rng):
    p = 53
    result = ProgressMeasures()(dataset(rng.normal(size=(p, p, p)))).isel(step=0)
    assert float(result["restricted_loss"]) == pytest.approx(np.log(p), abs=0.02)
    assert float(result["excluded_loss"]) == pytest.approx(float(result["train_loss"]), abs=0.05)


def test_gini_matches_the_mean_absolute_difference(rng):
    x = rng.random(40) ** 3
    reference = np.abs(x[:, None] - x[None, :]).sum() / (2 * x.size * x.sum())
    assert gini(x) == pytest.approx(reference, rel=1e-12)
    assert gini(np.ones(7)) == pytest.approx(0.0, abs=1e-15)
    assert gini(np.eye(1, 10)[0]) == pytest.approx(0.9, rel=1e-12)


def test_keys_from_embeddings_steps_and_plot(rng):
    p = 17
    logits, _, _ = planted(p, rng)
    emb = [planted_embedding(p, 8, [3], noise=0.3, seed=1), planted_embedding(p, 8, [2, 5], seed=2)]
    ds = xr.Dataset({
        "outputs": (("step", "a", "b", "class"),  # not recorded at step 50
                    np.stack([rng.normal(size=(p, p, p)), np.full((p, p, p), np.nan), logits]),
                    {"output": "scores"}),
        "embeddings": (("step", "token", "dim"), np.stack([emb[0], np.full((p, 8), np.nan), emb[1]])),
    }, coords={"step": [0, 50, 100]}, attrs={"op": "+"})
    result = ProgressMeasures(n_keys=2, key_source="embeddings")(ds)
    assert sorted(result["key_frequency"].values.tolist()) == [2, 5]
    assert result["step"].values.tolist() == [0, 100]  # neither probe is recorded at 50
    planted_gini = float(result["embedding_gini"].sel(step=100))
    assert planted_gini == pytest.approx(gini(np.eye(2, 8).sum(0)), rel=1e-9)  # two of 8 equal
    assert float(result["embedding_gini"].sel(step=0)) < planted_gini
    assert result["restricted_loss"].attrs["units"] == "nat"
    assert isinstance(ProgressMeasures().plot(result), Figure)


@pytest.mark.parametrize("kwargs, ds_attrs, match", [
    ({"key_source": "weights"}, {}, "key_source"),
    ({"key_frequencies": [0, 2]}, {}, "key_frequencies"),
    ({}, {"op": "*"}, "modular addition only"),
    ({"key_step": 7}, {}, "key_step = 7"),
])
def test_bad_settings_get_one_line_errors(rng, kwargs, ds_attrs, match):
    ds = dataset(rng.normal(size=(7, 7, 7)))
    ds.attrs.update(ds_attrs)
    with pytest.raises((ConfigError, DatasetError), match=match) as info:
        ProgressMeasures(**kwargs)(ds)
    assert "\n" not in str(info.value)


def test_wrong_grid_and_missing_output_kind(rng):
    with pytest.raises(DatasetError, match=r"expected \(p, p, p\)"):
        ProgressMeasures()(dataset(rng.normal(size=(7, 7, 5))))
    ds = dataset(rng.normal(size=(7, 7, 7)))
    ds["outputs"].attrs.pop("output")
    with pytest.raises(DatasetError, match="output='scores'"):
        ProgressMeasures()(ds)
