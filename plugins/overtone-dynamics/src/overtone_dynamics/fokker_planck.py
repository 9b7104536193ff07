"""Numerics of one-dimensional Fokker-Planck dynamics on a fixed grid (NumPy only).

Densities live on ``n`` equal cells of width ``h`` (cell averages ``p_i``, ``sum p_i h = 1``).
The equation is ``dp/dt = -d/dw (D1 p) + d^2/dw^2 (D2 p)``, written as a conservation law
``dp/dt = -dJ/dw`` with the flux ``J = v p - D2 dp/dw`` and ``v = D1 - dD2/dw``. The flux through
each interior cell face is the Scharfetter-Gummel / Chang-Cooper one (exponentially fitted:
central differences where diffusion dominates, upwind where drift dominates, positive either
way); no flux crosses the two outer faces, so the scheme conserves probability to rounding.
Time steps are explicit Euler, short enough that every update is a non-negative combination
of the old cell values (positivity and conservation together).

Drift and diffusion are estimated from samples of a process by Kramers-Moyal conditional
moments: ``D1(w) = E[dw | w] / dt``, ``D2(w) = Var[dw | w] / (2 dt)``.
"""

from __future__ import annotations

import numpy as np


class TooFewTransitions(ValueError):
    """No grid cell holds enough transitions to estimate drift and diffusion."""


def histogram_density(samples: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Cell-average density of ``samples`` on the cells between ``edges`` (n + 1 increasing):
    ``p_i = count_i / (N h_i)``; samples outside the edges are counted in the end cells (so the
    density always has unit mass on the grid)."""
    values = np.clip(np.ravel(samples), edges[0], edges[-1])
    counts, _ = np.histogram(values, bins=edges)
    return counts / (values.size * np.diff(edges))


def conditional_moments(start: np.ndarray, end: np.ndarray, dt: np.ndarray, edges: np.ndarray,
                        min_count: int = 20) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Drift ``D1`` and diffusion ``D2`` per cell from transitions ``start -> end`` over ``dt``,
    NaN in the cells with fewer than ``min_count`` transitions.

    ``start``, ``end``: values at the start and end of each transition (any shape, equal);
    ``dt``: the duration of each (broadcastable to them). Transitions are binned by their start
    value. Per cell, with increments ``x_k = end_k - start_k``::

        D1 = sum_k x_k / sum_k dt_k                       (E[dw | w] per unit time)
        D2 = sum_k (x_k - D1 dt_k)^2 / (2 sum_k dt_k)     (Var[dw | w] / (2 dt))

    The conditional variance (not the raw second moment) removes the drift's ``O(dt^2)`` share
    of ``E[dw^2]``. Returns ``(D1, D2, counts)``.
    """
    start, end, dt = (np.ravel(a) for a in np.broadcast_arrays(start, end, np.asarray(dt, dtype=np.float64)))
    n = len(edges) - 1
    cell = np.clip(np.searchsorted(edges, start, side="right") - 1, 0, n - 1)
    increment = end - start
    counts = np.bincount(cell, minlength=n)
    time = np.bincount(cell, weights=dt, minlength=n)
    moved = np.bincount(cell, weights=increment, minlength=n)
    enough = counts >= max(int(min_count), 2)
    drift = np.where(enough, moved / np.where(time > 0, time, 1.0), np.nan)
    residual = increment - np.nan_to_num(drift)[cell] * dt
    spread = np.bincount(cell, weights=residual**2, minlength=n)
    diffusion = np.where(enough, spread / (2 * np.where(time > 0, time, 1.0)), np.nan)
    return drift, diffusion, counts


def kramers_moyal(start: np.ndarray, end: np.ndarray, dt: np.ndarray, edges: np.ndarray,
                  min_count: int = 20) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`conditional_moments` with the cells that have fewer than ``min_count`` transitions
    filled: interpolated linearly from the nearest cells that have enough, held constant beyond
    the outermost. Raises :class:`TooFewTransitions` when no cell has ``min_count``."""
    drift, diffusion, counts = conditional_moments(start, end, dt, edges, min_count)
    enough = np.isfinite(drift)
    if not enough.any():
        raise TooFewTransitions(f"no grid cell has {min_count} transitions (most: {int(counts.max())}); "
                                "use fewer bins or a smaller min_count")
    centres = 0.5 * (edges[:-1] + edges[1:])
    return _fill(centres, drift, enough), _fill(centres, diffusion, enough), counts


def _fill(x: np.ndarray, values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``values`` with the invalid entries interpolated linearly in ``x`` from the valid ones."""
    return np.interp(x, x[valid], values[valid])


def _bernoulli(z: np.ndarray) -> np.ndarray:
    """``B(z) = z / (e^z - 1)`` (``B(0) = 1``), evaluated stably."""
    z = np.asarray(z, dtype=np.float64)
    small = np.abs(z) < 1e-8
    safe = np.where(small, 1.0, z)
    return np.where(small, 1.0 - z / 2, safe / np.expm1(safe))


def fokker_planck_matrix(drift: np.ndarray, diffusion: np.ndarray, h: float) -> np.ndarray:
    """Rate matrix ``A`` (n x n, tridiagonal) with ``dp/dt = A p`` for the cell averages ``p``.

    ``drift`` D1 and ``diffusion`` D2 (>= 0) are given at the cell centres. At the face between
    cells ``i`` and ``i + 1``: ``D = (D2_i + D2_{i+1}) / 2``, ``v = (D1_i + D1_{i+1}) / 2 -
    (D2_{i+1} - D2_i) / h``, Peclet number ``z = v h / D``, and the Scharfetter-Gummel flux
    ``J = (D / h) (B(-z) p_i - B(z) p_{i+1})`` with ``B(z) = z / (e^z - 1)`` (pure upwind
    ``J = max(v, 0) p_i + min(v, 0) p_{i+1}`` where ``D = 0``). The outer faces carry no flux.
    Every column sums to zero (mass is conserved) and the off-diagonal entries are >= 0.
    """
    drift = np.asarray(drift, dtype=np.float64)
    diffusion = np.maximum(np.asarray(diffusion, dtype=np.float64), 0.0)
    n = drift.size
    d_face = 0.5 * (diffusion[:-1] + diffusion[1:])
    v_face = 0.5 * (drift[:-1] + drift[1:]) - np.diff(diffusion) / h
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(d_face > 0, v_face * h / np.where(d_face > 0, d_face, 1.0), 0.0)
    # J = a p_i - b p_{i+1}, a, b >= 0
    a = np.where(d_face > 0, d_face / h * _bernoulli(-z), np.maximum(v_face, 0.0))
    b = np.where(d_face > 0, d_face / h * _bernoulli(z), np.maximum(-v_face, 0.0))
    rates = np.zeros((n, n))
    faces = np.arange(n - 1)
    # dp_i/dt = (J_{i-1/2} - J_{i+1/2}) / h
    rates[faces, faces] -= a / h
    rates[faces, faces + 1] += b / h
    rates[faces + 1, faces] += a / h
    rates[faces + 1, faces + 1] -= b / h
    return rates


def integrate(p0: np.ndarray, rates: np.ndarray, duration: float, safety: float = 0.9) -> np.ndarray:
    """``p(duration)`` from ``p(0) = p0`` under ``dp/dt = rates @ p`` by explicit Euler.

    The substep is ``dt = safety / max_i |rates_ii|`` (or shorter, to land on ``duration``), so
    ``I + dt rates`` has no negative entry: densities stay non-negative and, the columns of
    ``rates`` summing to zero, their mass is conserved.
    """
    p = np.asarray(p0, dtype=np.float64).copy()
    if duration <= 0:
        return p
    fastest = float(np.max(-np.diag(rates))) if rates.size else 0.0
    substeps = max(1, int(np.ceil(duration * fastest / safety)))
    step = np.eye(len(p)) + (duration / substeps) * rates
    for _ in range(substeps):
        p = step @ p
    return p


def wasserstein1(p: np.ndarray, q: np.ndarray, h: float) -> float:
    """Wasserstein-1 distance ``int |F_p - F_q| dw`` of two densities on the same cells (width
    ``h``): the CDFs are exact at the cell edges and linear in between; the integral is the
    trapezoid rule over the edges (exact where ``F_p - F_q`` keeps its sign within a cell)."""
    gap = np.concatenate([[0.0], np.cumsum((np.asarray(p) - np.asarray(q)) * h)])
    return float(h * np.sum(0.5 * (np.abs(gap[:-1]) + np.abs(gap[1:]))))


def kl_divergence(p: np.ndarray, q: np.ndarray, h: float, floor: float = 1e-10) -> float:
    """``KL(p || q) = sum_i m_i log(m_i / n_i)`` [nat] of the cell masses ``m = p h``,
    ``n = q h``; ``n`` is floored at ``floor`` and renormalised (so KL stays finite), and cells
    with ``m_i = 0`` add nothing."""
    m = np.asarray(p, dtype=np.float64) * h
    n = np.maximum(np.asarray(q, dtype=np.float64) * h, floor)
    m, n = m / m.sum(), n / n.sum()
    keep = m > 0
    return float(np.sum(m[keep] * np.log(m[keep] / n[keep])))


def gaussian_cell_density(edges: np.ndarray, mean: float, variance: float) -> np.ndarray:
    """Cell averages of the normal density ``N(mean, variance)`` on the cells between ``edges``
    (exact: differences of the normal CDF over each cell, divided by its width)."""
    from scipy.special import ndtr

    cdf = ndtr((np.asarray(edges, dtype=np.float64) - mean) / np.sqrt(variance))
    return np.diff(cdf) / np.diff(edges)
