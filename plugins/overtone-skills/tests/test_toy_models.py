"""The toy models against independent references: torch's Adam for the Geometry model, exact
conservation laws for the Resource model, the closed form for the Domino model."""

from __future__ import annotations

import numpy as np
import pytest
from overtone_skills import toy_models as tm


def test_task_frequencies_and_vectors():
    p = tm.task_frequencies(4, 2.0)
    np.testing.assert_allclose(p, np.array([1, 1 / 4, 1 / 9, 1 / 16]) / (1 + 1 / 4 + 1 / 9 + 1 / 16))
    vectors = tm.task_vectors(5, 40, np.random.default_rng(0))
    np.testing.assert_allclose(vectors @ vectors.T, np.eye(5), atol=1e-12)
    loose = tm.task_vectors(5, 40, np.random.default_rng(0), orthogonal=False)
    np.testing.assert_allclose(np.linalg.norm(loose, axis=1), 1.0, atol=1e-12)
    with pytest.raises(ValueError, match="n_params >= 5"):
        tm.task_vectors(5, 3, np.random.default_rng(0))


def _torch_geometry(p, vectors, steps, lr, loss, batch_ids=None):
    """The paper's notebook formulation: torch Adam(betas=(0, 0)) on autograd's gradient."""
    torch = pytest.importorskip("torch")
    t = torch.tensor(vectors, dtype=torch.float64)
    prob = torch.tensor(p, dtype=torch.float64)
    x = torch.nn.Parameter(torch.zeros(vectors.shape[1], dtype=torch.float64))
    optimizer = torch.optim.Adam([x], lr=lr, betas=(0.0, 0.0))
    levels = []
    for i in range(steps):
        optimizer.zero_grad()
        ability = t @ x
        if loss == "ce":
            ability = torch.sigmoid(ability)
        per_skill = (1 - ability) ** 2 if loss == "mse" else -torch.log(ability)
        value = per_skill[batch_ids[i]].mean() if batch_ids is not None else (per_skill * prob).mean()
        value.backward()
        levels.append(ability.detach().numpy().copy())
        optimizer.step()
    return np.array(levels)


@pytest.mark.parametrize("loss", ["mse", "ce"])
def test_geometry_matches_torch_adam_with_zero_betas(loss):
    p = tm.task_frequencies(6, 2.0)
    vectors = tm.task_vectors(6, 50, np.random.default_rng(1))
    ours = tm.geometry(p=p, vectors=vectors, steps=300, lr=3e-3, loss=loss)
    reference = _torch_geometry(p, vectors, 300, 3e-3, loss)
    np.testing.assert_allclose(ours.skill_level, reference, rtol=0, atol=1e-10)


def test_geometry_with_sampled_batches_matches_torch():
    p = tm.task_frequencies(4, 1.0)
    vectors = tm.task_vectors(4, 20, np.random.default_rng(2))
    ours = tm.geometry(p=p, vectors=vectors, steps=100, lr=1e-2, batch_size=8,
                       rng=np.random.default_rng(5))
    draws = np.random.default_rng(5)
    ids = [draws.choice(4, size=8, p=p) for _ in range(100)]
    reference = _torch_geometry(p, vectors, 100, 1e-2, "mse", batch_ids=ids)
    np.testing.assert_allclose(ours.skill_level, reference, rtol=0, atol=1e-10)


def test_geometry_gradient_descent_is_exact_for_one_orthonormal_skill():
    # one skill, plain GD: s <- s + lr * 2 (1 - s) p / n * |t|^2, so 1 - s = (1 - 2 lr)^t
    vectors = tm.task_vectors(1, 7, np.random.default_rng(3))
    ours = tm.geometry(p=np.array([1.0]), vectors=vectors, steps=50, lr=0.05, optimizer="sgd")
    np.testing.assert_allclose(1 - ours.skill_level[:, 0], (1 - 2 * 0.05) ** np.arange(50),
                               rtol=1e-12)


def test_geometry_learns_frequent_skills_first():
    p = tm.task_frequencies(10, 2.0)
    vectors = tm.task_vectors(10, 1000, np.random.default_rng(0))
    levels = tm.geometry(p=p, vectors=vectors, steps=1000, lr=3e-4).skill_level
    half = np.argmax(levels >= 0.5, axis=0)  # step at which each skill passes 0.5
    assert (levels[-1] > 0.99).all()
    assert (np.diff(half) > 0).all(), half


def test_resource_conserves_the_spent_resource():
    # with N0 = 0 and C = I the shares sum to 1: sum_k l_k falls by exactly eta_eff per step
    p = tm.task_frequencies(5, 1.5)
    lr, n_params = 1e-3, 400
    eta = 2 * lr * np.sqrt(n_params)
    residual = 1 - tm.resource(p=p, steps=60, lr=lr, n_params=n_params, wasted=0.0).skill_level
    alive = (residual > 0).all(axis=1)
    np.testing.assert_allclose(residual.sum(axis=1)[alive], 5 - eta * np.arange(alive.sum()),
                               rtol=1e-12)
    # with N0 > 0 a share N0 / (sum c + N0) is wasted
    wasted = 1 - tm.resource(p=p, steps=2, lr=lr, n_params=n_params, wasted=0.5).skill_level
    c = p * 1.0
    np.testing.assert_allclose(5 - wasted[1].sum(), eta * c.sum() / (c.sum() + 0.5), rtol=1e-12)


def test_resource_cross_entropy_form():
    p = tm.task_frequencies(3, 2.0)
    out = tm.resource(p=p, steps=3, lr=1e-2, n_params=100, wasted=0.01, loss="ce")
    logits = np.log(out.skill_level / (1 - out.skill_level))
    c = p * 0.5  # sigma(0) = 1/2 at the start
    np.testing.assert_allclose(logits[1], 0.2 * c / (c.sum() + 0.01), rtol=1e-10)
    np.testing.assert_allclose(out.skill_loss, np.log1p(np.exp(-logits)), rtol=1e-10)


def test_domino_closed_form_and_parallel_contrast():
    out = tm.domino(n_skills=3, steps=31, t0=10.0)
    np.testing.assert_allclose(out.skill_level[5], [0.5, 0.0, 0.0])
    np.testing.assert_allclose(out.skill_level[15], [1.0, 0.5, 0.0])
    np.testing.assert_allclose(out.skill_level[30], [1.0, 1.0, 1.0])
    parallel = tm.domino(n_skills=2, steps=5, t0=10.0, schedule="parallel", tau=2.0)
    np.testing.assert_allclose(parallel.skill_level[4], 1 - np.exp(-4 / np.array([2.0, 4.0])))


def test_modular_domino_closed_form():
    # 4 skills in 2 modules: skills 1, 3 in module 0 and 2, 4 in module 1; t0_m = sqrt(2) t0
    t0, t0_m = 10.0, 10.0 * np.sqrt(2.0)
    out = tm.domino(n_skills=4, steps=40, t0=t0, modules=2)
    np.testing.assert_allclose(out.skill_level[7], [7 / t0_m, 7 / t0_m, 0.0, 0.0], rtol=1e-12)
    late = (20 - t0_m) / t0_m
    np.testing.assert_allclose(out.skill_level[20], [1.0, 1.0, late, late], rtol=1e-12)
    # one module per skill: every skill rises together over sqrt(n) t0
    parallel = tm.domino(n_skills=9, steps=40, t0=t0, modules=9)
    np.testing.assert_allclose(parallel.skill_level[12], np.full(9, 12 / 30.0), rtol=1e-12)
    # modules = 1 is the non-modular Domino
    np.testing.assert_array_equal(tm.domino(n_skills=5, steps=60, t0=t0, modules=1).skill_level,
                                  tm.domino(n_skills=5, steps=60, t0=t0).skill_level)


@pytest.mark.parametrize("n, m", [(8, 1), (8, 2), (8, 8), (9, 4), (16, 16)])
def test_domino_time_to_learn_matches_the_trajectory(n, m):
    t0 = 7.3
    closed = tm.domino_time_to_learn(n, t0, modules=m, level=0.9)
    np.testing.assert_allclose(closed, (np.ceil(n / m) - 1 + 0.9) * np.sqrt(m) * t0, rtol=1e-12)
    levels = tm.domino(n_skills=n, steps=int(closed) + 5, t0=t0, modules=m).skill_level
    first = int(np.argmax((levels >= 0.9 - 1e-12).all(axis=1)))
    assert first == int(np.ceil(closed - 1e-9)), (first, closed)
    # the fully modular speed-up at level 1 is exactly sqrt(n)
    ratio = tm.domino_time_to_learn(n, t0) / tm.domino_time_to_learn(n, t0, modules=n)
    np.testing.assert_allclose(ratio, np.sqrt(n), rtol=1e-12)


def test_modular_task_vectors_live_on_their_block():
    rng = np.random.default_rng(4)
    same = tm.modular_task_vectors(5, 40, 1, np.random.default_rng(4))
    np.testing.assert_array_equal(same, tm.task_vectors(5, 40, rng))
    vectors = tm.modular_task_vectors(6, 30, 3, np.random.default_rng(0))
    np.testing.assert_allclose(vectors @ vectors.T, np.eye(6), atol=1e-12)
    group, position = tm.module_of(6, 3)
    np.testing.assert_array_equal(group, [0, 1, 2, 0, 1, 2])
    np.testing.assert_array_equal(position, [1, 1, 1, 2, 2, 2])
    for k in range(6):
        support = np.flatnonzero(vectors[k])
        assert support.min() >= 10 * group[k] and support.max() < 10 * (group[k] + 1)
    with pytest.raises(ValueError, match="modules = 7 must lie in 1..n_skills = 6"):
        tm.module_of(6, 7)
    with pytest.raises(ValueError, match="raise n_params"):
        tm.modular_task_vectors(6, 5, 3, np.random.default_rng(0))


def test_modular_geometry_learns_every_skill_at_its_own_frequency_free_rate():
    # one module per skill, sign descent: each coordinate's gradient comes from one skill only,
    # so s_k(t) = t lr |t_k|_1 exactly (eps -> 0) until it reaches 1, whatever p_k is
    p = tm.task_frequencies(4, 2.0)
    vectors = tm.modular_task_vectors(4, 400, 4, np.random.default_rng(1))
    lr = 1e-3
    out = tm.geometry(p=p, vectors=vectors, steps=30, lr=lr, eps=0.0)
    rate = lr * np.abs(vectors).sum(axis=1)
    np.testing.assert_allclose(out.skill_level, np.arange(30)[:, None] * rate[None, :],
                               rtol=1e-12, atol=1e-15)
