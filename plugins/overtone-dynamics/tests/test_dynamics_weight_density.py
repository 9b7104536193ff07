"""weight-density against closed forms: an Ornstein-Uhlenbeck process dw = -theta (w - mu) dt +
sigma dW simulated exactly has D1(w) = -theta (w - mu), D2 = sigma^2 / 2 and Gaussian marginals
N(mu + (m0 - mu) e^{-theta t}, sigma^2 / (2 theta) (1 - e^{-2 theta t}) + v0 e^{-2 theta t}).
The Fokker-Planck integrator conserves mass and stays non-negative."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from overtone import ConfigError, DatasetError
from overtone.runschema import history_entries
from overtone_dynamics import fokker_planck as fp
from overtone_dynamics.weight_density import WeightDensity

THETA, MU, SIGMA = 0.02, 0.3, 0.05  # per optimizer step
M0, V0 = -0.5, 0.01  # the starting density N(M0, V0), far from the stationary N(MU, SIGMA^2 / (2 THETA))
STATIONARY_STD = SIGMA / np.sqrt(2 * THETA)  # 0.25


def ou_marginal(t: float) -> tuple[float, float]:
    """Mean and variance of the OU process at time t from N(M0, V0)."""
    decay = np.exp(-THETA * t)
    return MU + (M0 - MU) * decay, SIGMA**2 / (2 * THETA) * (1 - decay**2) + V0 * decay**2


def ou_probes(n: int = 20000, steps: int = 200, every: int = 1, seed: int = 0) -> xr.Dataset:
    """n independent OU "weights" (a 100 x n/100 matrix) advanced with the exact one-step transition
    w' = mu + (w - mu) e^{-theta} + sigma sqrt((1 - e^{-2 theta}) / (2 theta)) xi, recorded every ``every``."""
    rng = np.random.default_rng(seed)
    w = M0 + np.sqrt(V0) * rng.standard_normal(n)
    decay = np.exp(-THETA)
    noise = SIGMA * np.sqrt((1 - decay**2) / (2 * THETA))
    records = [w.copy()]
    for t in range(1, steps + 1):
        w = MU + (w - MU) * decay + noise * rng.standard_normal(n)
        if t % every == 0:
            records.append(w.copy())
    recorded = np.arange(0, steps + 1, every)
    values = np.stack(records).reshape(len(recorded), 100, n // 100).astype(np.float32)
    return xr.Dataset({"weight_model_w": (("step", "w_out", "w_in"), values)}, coords={"step": recorded})


@pytest.fixture(scope="module")
def ou_result():
    return WeightDensity()(ou_probes())


def populated(result: xr.Dataset, minimum: int = 1000):
    part = result.isel(matrix=0)
    keep = part["transitions"].values >= minimum
    return part["w"].values[keep], part["drift"].values[keep], part["diffusion"].values[keep], \
        part["transitions"].values[keep]


def test_drift_and_diffusion_of_an_ou_process_are_recovered(ou_result):
    w, drift, diffusion, counts = populated(ou_result)
    assert len(w) >= 30  # bins with >= 1,000 transitions: the fit has support
    slope, intercept = np.polyfit(w, drift, 1, w=np.sqrt(counts))
    # one-step bias of the Kramers-Moyal estimate: (e^{-theta} - 1) vs -theta, 1 %; tolerance 3 %
    assert slope == pytest.approx(-THETA, rel=0.03)
    assert -intercept / slope == pytest.approx(MU, abs=0.04 * STATIONARY_STD)
    # D2 from Var[dw | w] / 2: bias (1 - e^{-2 theta}) / (2 theta) - 1 = -2 %; tolerances 4 % mean, 10 % per bin
    assert np.average(diffusion, weights=counts) == pytest.approx(SIGMA**2 / 2, rel=0.04)
    np.testing.assert_allclose(diffusion, SIGMA**2 / 2, rtol=0.10)
    part = ou_result.isel(matrix=0)
    assert part["drift"].attrs["units"] == "weight unit / step" and int(part["entries"]) == 20000


def test_fokker_planck_prediction_matches_the_ou_gaussian(ou_result):
    part = ou_result.isel(matrix=0)
    h = float(part["bin_width"])
    edges = np.append(part["w"].values - h / 2, part["w"].values[-1] + h / 2)
    for index in (10, 50, 100, 200):
        step = int(part["step"].values[index])
        mean, variance = ou_marginal(step)
        exact = fp.gaussian_cell_density(edges, mean, variance)
        predicted = part["predicted"].values[index]
        # tolerance: 3 % of the stationary std (observed ~1-1.5 %: histogram noise of the start
        # density, 20,000 samples, and the estimated coefficients)
        assert fp.wasserstein1(predicted, exact, h) < 0.03 * STATIONARY_STD, step
        assert part["w1"].values[index] < 0.03 * STATIONARY_STD  # against the empirical histogram too
        assert part["w1_static"].values[index] > 5 * part["w1"].values[index]  # the density did move
        assert part["kl"].values[index] < 0.01
        assert float(part["mean_predicted"][index]) == pytest.approx(mean, abs=0.02 * STATIONARY_STD)
        assert float(part["std_predicted"][index]) == pytest.approx(np.sqrt(variance), rel=0.03)
    np.testing.assert_allclose((part["predicted"].values * h).sum(-1), 1.0, atol=1e-9)


def test_coarser_probes_give_per_step_coefficients():
    result = WeightDensity()(ou_probes(n=10000, steps=200, every=4))
    w, drift, _, counts = populated(result, 300)
    slope = np.polyfit(w, drift, 1, w=np.sqrt(counts))[0]
    # over 4 steps the conditional mean is (e^{-4 theta} - 1)(w - mu): per step, that / 4
    assert slope == pytest.approx((np.exp(-4 * THETA) - 1) / 4, rel=0.03)


def test_per_interval_coefficients_also_follow_the_ou_density():
    result = WeightDensity(coefficients="per-interval", bins=60)(ou_probes(n=20000, steps=100))
    part = result.isel(matrix=0)
    assert result.attrs["coefficients"] == "per-interval"
    # each interval's own 20,000 transitions: observed max W1 1.5 % of the std, tolerance 3 %
    # (the Kramers-Moyal bias grows with theta * dt: 6 % with probes every 5 steps here)
    assert np.nanmax(part["w1"].values) < 0.03 * STATIONARY_STD


def test_the_integrator_alone_follows_the_ou_closed_form():
    edges = np.linspace(-1.5, 1.5, 151)
    h = edges[1] - edges[0]
    centres = 0.5 * (edges[:-1] + edges[1:])
    rates = fp.fokker_planck_matrix(-THETA * (centres - MU), np.full_like(centres, SIGMA**2 / 2), h)
    p = fp.gaussian_cell_density(edges, M0, V0)
    for t in (25, 75, 150):
        p = fp.integrate(p, rates, 25 if t == 25 else (50 if t == 75 else 75))
        mean, variance = ou_marginal(t)
        # exact coefficients: the only error is the discretisation (h = 0.02): W1 < 0.5 % of the std
        assert fp.wasserstein1(p, fp.gaussian_cell_density(edges, mean, variance), h) < 0.005 * STATIONARY_STD


def test_the_integrator_conserves_mass_and_positivity():
    rng = np.random.default_rng(3)
    n = 50
    drift = rng.normal(scale=2.0, size=n)  # strong, rough drift pushing mass onto both walls
    diffusion = rng.uniform(0.0, 0.05, size=n)
    diffusion[::7] = 0.0  # faces without diffusion: pure upwind
    rates = fp.fokker_planck_matrix(drift, diffusion, 0.1)
    np.testing.assert_allclose(rates.sum(axis=0), 0.0, atol=1e-12)  # every column: mass is conserved
    assert (rates - np.diag(np.diag(rates)) >= 0).all()
    p0 = rng.uniform(size=n)
    p0 /= p0.sum() * 0.1
    p = fp.integrate(p0, rates, 40.0)
    assert (p >= 0).all()
    assert (p * 0.1).sum() == pytest.approx(1.0, abs=1e-12)


def test_wasserstein_and_kl_against_closed_forms():
    edges = np.linspace(-8, 8, 1601)
    h = edges[1] - edges[0]
    p, q = fp.gaussian_cell_density(edges, 0.0, 1.0), fp.gaussian_cell_density(edges, 0.7, 1.0)
    assert fp.wasserstein1(p, q, h) == pytest.approx(0.7, rel=1e-3)  # a shift moves all mass by 0.7
    r = fp.gaussian_cell_density(edges, 0.0, 4.0)
    # KL(N(0,1) || N(0,4)) = log 2 + 1/8 - 1/2
    assert fp.kl_divergence(p, r, h) == pytest.approx(np.log(2) + 1 / 8 - 1 / 2, rel=1e-3)
    assert fp.kl_divergence(p, p, h) == pytest.approx(0.0, abs=1e-6)  # the 1e-10 floor on empty tails


def test_result_layout_history_netcdf_and_plot(tmp_path):
    ds = ou_probes(n=2000, steps=20)
    ds["weight_model_v"] = (("step", "v_out", "v_in"), ds["weight_model_w"].values[:, :10, :5] * 2)
    ds["hidden"] = (("step", "sample"), np.zeros((21, 3)))  # other probes are left alone
    result = WeightDensity(bins=20, start_step=5, min_count=5)(ds)
    assert list(result["matrix"].values) == ["weight_model_v", "weight_model_w"]
    assert result["density"].dims == ("matrix", "step", "bin") and result["w"].dims == ("matrix", "bin")
    assert np.isnan(result["predicted"].sel(step=slice(0, 4))).all()  # before the start step
    np.testing.assert_array_equal(result["predicted"].sel(step=5), result["density"].sel(step=5))
    assert (result["start_step"].values == 5).all()
    for var in result.data_vars.values():
        assert "units" in var.attrs, var.name
    assert history_entries(result)[-1]["component"] == "weight-density"
    result.to_netcdf(tmp_path / "r.nc", engine="h5netcdf")
    fig = WeightDensity().plot(result)
    assert len(fig.axes) >= 6


def test_a_fit_window_leaves_later_steps_out_of_sample():
    ds = ou_probes(n=5000, steps=60)
    result = WeightDensity(fit_until=30)(ds)
    assert int(result["fit_last_step"][0]) == 30
    assert int(result["transitions"][0].sum()) == 30 * 5000


@pytest.mark.parametrize(("params", "message"), [
    ({"bins": 2}, "bins = 2"),
    ({"range": [1.0, 0.0]}, "range = "),
    ({"coefficients": "linear"}, "coefficients = 'linear'"),
    ({"min_count": 1}, "min_count = 1"),
    ({"variables": []}, "variables = \\[\\]"),
])
def test_bad_params(params, message):
    with pytest.raises(ConfigError, match=message):
        WeightDensity(**params)


def test_bad_input_is_one_clear_error():
    ds = ou_probes(n=1000, steps=10)
    with pytest.raises(DatasetError, match="no weight probe"):
        WeightDensity()(ds.rename({"weight_model_w": "hidden"}))
    with pytest.raises(DatasetError, match="at least 3"):
        WeightDensity()(ds.isel(step=[0, 1]))
    with pytest.raises(DatasetError, match="start_step = 7 is not a recorded step"):
        WeightDensity(start_step=7)(ds.isel(step=[0, 2, 4, 6, 8, 10]))
    with pytest.raises(DatasetError, match="no variable 'weight_x'"):
        WeightDensity(variables=["weight_x"])(ds)
    with pytest.raises(DatasetError, match="min_count"):
        WeightDensity(min_count=100000)(ds)
    with pytest.raises(DatasetError, match="NaN or infinite"):
        WeightDensity()(ds.where(ds.step != 3, 0.0).where(lambda d: d != d.isel(step=0, w_out=0, w_in=0)))
    other = ds.assign(weight_model_v=ds["weight_model_w"].where(ds.step % 2 == 0))
    with pytest.raises(DatasetError, match="other steps"):
        WeightDensity()(other)


def test_per_interval_bins_with_too_few_transitions_take_the_pooled_coefficients():
    ds = ou_probes(n=1000, steps=20)  # 1,000 entries: most bins of one interval hold < 100
    per_interval = WeightDensity(coefficients="per-interval", min_count=100, bins=20)(ds)
    assert np.isfinite(per_interval["w1"].values).all()
    sparse = WeightDensity(coefficients="per-interval", min_count=5000, bins=20)(ou_probes(n=5000, steps=20))
    pooled = WeightDensity(min_count=5000, bins=20)(ou_probes(n=5000, steps=20))
    # no bin of any single interval has 5,000 transitions: every one falls back to the pooled value
    np.testing.assert_allclose(sparse["predicted"].values, pooled["predicted"].values, rtol=1e-12)
