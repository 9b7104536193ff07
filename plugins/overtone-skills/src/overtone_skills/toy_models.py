"""The three toy models of skill learning of Liu et al., "Physics of skill learning" (arXiv 2501.12391).

Every model tracks ``n`` skills whose tasks occur with frequencies ``p_k ~ k^-alpha`` (normalised),
and returns per-step skill levels ``s_k`` in [0, 1] and per-skill losses, recorded *before* each
update (step 0 is the initial state), as the paper's notebooks do.

* **Geometry**: parameters ``theta in R^N`` start at 0; task ``k`` has a unit vector ``t_k``
  (orthonormal rows by default); the skill is ``s_k = t_k . theta`` (MSE) or
  ``sigma(t_k . theta)`` (CE); the loss is ``(1/n) sum_k p_k (1 - s_k)^2`` or
  ``(1/n) sum_k -p_k log s_k`` (with a batch: task ids drawn from ``p``, unweighted batch mean).
  The optimizer is Adam with betas (0, 0), i.e. sign descent ``theta -= lr g / (|g| + eps)``,
  or plain gradient descent.
* **Resource**: per-skill residuals ``l_k`` (MSE: from 1, skill ``1 - l_k``, loss ``l_k^2``; CE:
  logits from 0, skill ``sigma(l_k)``, loss ``log(1 + e^-l_k)``). Each step the "competitiveness"
  ``c_k = p_k l_k`` (CE: ``p_k (1 - sigma(l_k))``) buys a share ``r = C c / (sum_j c_j + N0)`` of
  the update ``eta_eff = 2 lr sqrt(N)``; ``N0`` is resource wasted on no skill.
* **Domino**: skill ``i`` (1-based) is 0 before ``(i - 1) t0``, rises linearly over ``t0`` and is 1
  after ``i t0``, with ``t0 = 1 / eta_eff``: one skill at a time, each starting when the previous
  one finishes. ``schedule = "parallel"`` gives the contrast ``s_i = 1 - exp(-t / (tau i))``.

**Modularity** (``modules = m``, both the Domino and the Geometry model). The ``N`` parameters
are split into ``m`` independent modules of ``N / m`` each, and skill ``i`` (frequency rank) is
served by module ``(i - 1) mod m`` (round-robin, so every module gets frequent and rare skills
alike). In the Domino model each module runs its own Domino over its ``ceil(n / m)`` skills with
``t0_m = 1 / (2 lr sqrt(N / m)) = sqrt(m) t0``, all modules at once: the last skill is learned at
``T(m) = ceil(n / m) sqrt(m) t0``, so a fully modular network (``m = n``) learns ``n`` skills in
``sqrt(n) t0`` instead of ``n t0``, a speed-up of ``sqrt(n)``. In the Geometry model skill ``i``'s
task vector is supported on its module's block of coordinates only (orthonormal within a block).
``modules = 1`` is the non-modular model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Trajectory:
    """Skill levels and losses over steps: arrays of shape (steps, skills) and (steps,)."""

    skill_level: np.ndarray
    skill_loss: np.ndarray
    loss: np.ndarray


def task_frequencies(n_skills: int, alpha: float) -> np.ndarray:
    """``p_k = k^-alpha / sum_j j^-alpha`` for k = 1..n (Zipf-like task frequencies)."""
    k = np.arange(1, n_skills + 1, dtype=np.float64)
    p = k ** -float(alpha)
    return p / p.sum()


def task_vectors(n_skills: int, n_params: int, rng: np.random.Generator,
                 orthogonal: bool = True) -> np.ndarray:
    """Unit task vectors ``t_k`` as rows of an (n_skills, n_params) array.

    Orthogonal rows come from the QR decomposition of a Gaussian matrix; otherwise each row is
    an independent Gaussian vector normalised to unit length.
    """
    if orthogonal:
        if n_params < n_skills:
            raise ValueError(f"{n_skills} orthogonal task vectors need n_params >= {n_skills}, "
                             f"got {n_params}")
        q, r = np.linalg.qr(rng.standard_normal((n_params, n_skills)))
        return (q * np.sign(np.diag(r))).T  # sign-fixed so the result is unique
    vectors = rng.standard_normal((n_skills, n_params))
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def module_of(n_skills: int, modules: int) -> tuple[np.ndarray, np.ndarray]:
    """Module (0-based) and position within it (1-based) of skills 1..n, assigned round-robin.

    Skill ``i`` goes to module ``(i - 1) mod m`` at position ``(i - 1) // m + 1``.
    """
    if not 1 <= modules <= n_skills:
        raise ValueError(f"modules = {modules} must lie in 1..n_skills = {n_skills}")
    i = np.arange(n_skills)
    return i % modules, i // modules + 1


def modular_task_vectors(n_skills: int, n_params: int, modules: int, rng: np.random.Generator,
                         orthogonal: bool = True) -> np.ndarray:
    """Unit task vectors (rows) of a network split into ``modules`` blocks of coordinates.

    The coordinates ``0..n_params-1`` are cut into ``modules`` contiguous blocks of (almost)
    equal size (``numpy.array_split``); skill ``i`` lives on block ``(i - 1) mod modules`` only,
    with :func:`task_vectors` drawn inside that block for the block's skills. ``modules = 1`` is
    exactly :func:`task_vectors` (same draws).
    """
    if modules == 1:
        return task_vectors(n_skills, n_params, rng, orthogonal=orthogonal)
    group, _ = module_of(n_skills, modules)
    blocks = np.array_split(np.arange(n_params), modules)
    vectors = np.zeros((n_skills, n_params))
    for g, block in enumerate(blocks):
        members = np.flatnonzero(group == g)
        if orthogonal and len(block) < len(members):
            raise ValueError(f"module {g} has {len(block)} coordinates for {len(members)} "
                             f"orthogonal task vectors; raise n_params or set orthogonal = false")
        vectors[np.ix_(members, block)] = task_vectors(len(members), len(block), rng,
                                                       orthogonal=orthogonal)
    return vectors


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def geometry(*, p: np.ndarray, vectors: np.ndarray, steps: int, lr: float, loss: str = "mse",
             optimizer: str = "sign", eps: float = 1e-8, batch_size: int = 0,
             rng: np.random.Generator | None = None, noise: float = 0.0) -> Trajectory:
    """Train the Geometry model from ``theta = 0`` for ``steps`` updates (see the module docstring).

    ``batch_size = 0`` uses the true frequencies ``p``; ``batch_size > 0`` samples task ids from
    ``p`` each step. ``noise`` adds Gaussian noise of that scale to every gradient component.
    """
    n, dim = vectors.shape
    rng = rng if rng is not None else np.random.default_rng(0)
    theta = np.zeros(dim)
    levels, losses, totals = np.empty((steps, n)), np.empty((steps, n)), np.empty(steps)
    for t in range(steps):
        u = vectors @ theta
        s = u if loss == "mse" else _sigmoid(u)
        per_skill = (1.0 - s) ** 2 if loss == "mse" else -np.log(np.maximum(s, 1e-300))
        if batch_size > 0:
            weights = np.bincount(rng.choice(n, size=batch_size, p=p), minlength=n) / batch_size
        else:
            weights = p / n
        levels[t], losses[t], totals[t] = s, per_skill, float(weights @ per_skill)
        # d per_skill / d u: MSE -2 (1 - s); CE -(1 - sigma(u))
        d_u = -2.0 * (1.0 - s) if loss == "mse" else -(1.0 - s)
        grad = (weights * d_u) @ vectors
        if noise:
            grad = grad + noise * rng.standard_normal(dim)
        if optimizer == "sign":
            theta = theta - lr * grad / (np.abs(grad) + eps)
        else:
            theta = theta - lr * grad
    return Trajectory(levels, losses, totals)


def resource(*, p: np.ndarray, steps: int, lr: float, n_params: int, wasted: float,
             loss: str = "mse", coupling: np.ndarray | None = None) -> Trajectory:
    """Run the Resource model for ``steps`` updates (see the module docstring)."""
    n = len(p)
    coupling = np.eye(n) if coupling is None else coupling
    eta_eff = 2.0 * lr * np.sqrt(n_params)
    state = np.ones(n) if loss == "mse" else np.zeros(n)
    levels, losses, totals = np.empty((steps, n)), np.empty((steps, n)), np.empty(steps)
    for t in range(steps):
        if loss == "mse":
            levels[t], losses[t] = 1.0 - state, state**2
            competitiveness = p * state
        else:
            levels[t], losses[t] = _sigmoid(state), np.logaddexp(0.0, -state)
            competitiveness = p * (1.0 - _sigmoid(state))
        totals[t] = float(p @ losses[t])
        share = coupling @ competitiveness / (competitiveness.sum() + wasted)
        state = np.maximum(state - eta_eff * share, 0.0) if loss == "mse" else state + eta_eff * share
    return Trajectory(levels, losses, totals)


def domino(*, n_skills: int, steps: int, t0: float, schedule: str = "domino",
           tau: float = 30.0, p: np.ndarray | None = None, modules: int = 1) -> Trajectory:
    """Skill levels of the Domino model (or its ``parallel`` contrast) at steps 0..steps-1.

    ``t0`` is the time per skill of the whole (non-modular) network; with ``modules = m`` each
    module runs a Domino over its skills with ``sqrt(m) t0`` per skill (module docstring).
    Losses are ``(1 - s)^2`` per skill; the total weights them by ``p`` (uniform by default).
    """
    t = np.arange(steps, dtype=np.float64)[:, None]
    i = np.arange(1, n_skills + 1, dtype=np.float64)[None, :]
    if schedule == "domino":
        _, position = module_of(n_skills, modules)
        t0_module = np.sqrt(modules) * t0
        levels = np.clip((t - (position[None, :] - 1) * t0_module) / t0_module, 0.0, 1.0)
    else:
        levels = 1.0 - np.exp(-t / (tau * i))
    losses = (1.0 - levels) ** 2
    weights = np.full(n_skills, 1.0 / n_skills) if p is None else p
    return Trajectory(levels, losses, losses @ weights)


def domino_time_to_learn(n_skills: int, t0: float, modules: int = 1, level: float = 1.0) -> float:
    """Closed form: the time at which every skill of the Domino model has reached ``level``.

    ``(ceil(n / m) - 1 + level) sqrt(m) t0``; at ``level = 1`` this is ``ceil(n / m) sqrt(m) t0``,
    i.e. ``n t0`` for the non-modular network and ``sqrt(n) t0`` for one module per skill.
    """
    if not 0.0 < level <= 1.0:
        raise ValueError(f"level = {level} must lie in (0, 1]")
    _, position = module_of(n_skills, modules)
    return float((position.max() - 1 + level) * np.sqrt(modules) * t0)
