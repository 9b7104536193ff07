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
           tau: float = 30.0, p: np.ndarray | None = None) -> Trajectory:
    """Skill levels of the Domino model (or its ``parallel`` contrast) at steps 0..steps-1.

    Losses are ``(1 - s)^2`` per skill; the total weights them by ``p`` (uniform by default).
    """
    t = np.arange(steps, dtype=np.float64)[:, None]
    i = np.arange(1, n_skills + 1, dtype=np.float64)[None, :]
    if schedule == "domino":
        levels = np.clip((t - (i - 1) * t0) / t0, 0.0, 1.0)
    else:
        levels = 1.0 - np.exp(-t / (tau * i))
    losses = (1.0 - levels) ** 2
    weights = np.full(n_skills, 1.0 / n_skills) if p is None else p
    return Trajectory(levels, losses, losses @ weights)
