"""Plain-torch building blocks of the harmonic loss (arXiv 2502.01628): distances, logits, exponent.

Everything here is differentiable by ordinary autograd and materialises the full
``(rows, classes)`` matrix; it is the reference the chunked path (:mod:`overtone_harmonic.chunked`)
is tested against.
"""

from __future__ import annotations

import math
import os

import torch

IGNORE = -100
CONVENTIONS = ("distance", "squared")
#: How ``eps`` enters ``d^2``: ``"floor"`` (``max(d^2, eps)``, scale invariant wherever
#: ``d^2 > eps``) or ``"add"`` (``d^2 + eps``, the reference code's ``DistLayer``).
EPS_MODES = ("floor", "add")
#: The default ``eps`` of each mode: a floor far below any real ``d^2``; the reference's 1e-4.
DEFAULT_EPS = {"floor": 1e-12, "add": 1e-4}


def eps_floor_and_shift(eps: float, eps_mode: str) -> tuple[float, float]:
    """``(floor, shift)`` with ``d^2 -> max(d^2, floor) + shift`` for an ``eps_mode``.

    ``"floor"``: ``(eps, 0)``. ``"add"``: ``(0, eps)``, i.e. ``d^2 + eps`` as the reference code
    computes it (the floor at 0 only removes rounding below zero, which exact ``d^2`` never has).
    """
    from overtone import ConfigError

    if eps_mode not in EPS_MODES:
        raise ConfigError(f"[loss] eps_mode = {eps_mode!r}; allowed: 'floor' (max(d^2, eps)) "
                          "or 'add' (d^2 + eps, the reference code's DistLayer)")
    return (float(eps), 0.0) if eps_mode == "floor" else (0.0, float(eps))


def exponent_on_distance(n: float | None, convention: str, d_in: int) -> float:
    """The harmonic exponent applied to the distance ``d`` (the paper's ``n``).

    ``convention = "distance"``: ``n`` is the paper's exponent, ``p_i ~ d_i^-n``.
    ``convention = "squared"``: ``n`` is the public reference code's exponent, applied to the
    squared distance, ``p_i ~ (d_i^2)^-n = d_i^-2n``; it is doubled here.
    ``n = None`` gives the default ``2 sqrt(d_in)`` on ``d``, i.e. ``sqrt(d_in)`` on ``d^2``.
    """
    from overtone import ConfigError

    if convention not in CONVENTIONS:
        raise ConfigError(f"[loss] convention = {convention!r}; allowed: 'distance' (the paper's n, on d) "
                          "or 'squared' (the reference code's n, on d^2)")
    if n is None:
        return 2.0 * math.sqrt(d_in)
    value = float(n) * (2.0 if convention == "squared" else 1.0)
    if not value > 0 or not math.isfinite(value):
        raise ConfigError(f"[loss] n = {n} must be a positive number (e.g. n = {2 * math.sqrt(d_in):g}, "
                          "the default 2 sqrt(d_in) on the distance)")
    return value


def squared_distances(x: torch.Tensor, w: torch.Tensor, eps: float, eps_mode: str = "floor") -> torch.Tensor:
    """``d_ri^2 = ||x_r||^2 + ||w_i||^2 - 2 x_r . w_i`` for rows ``x (N, d)`` and centres ``w (V, d)``.

    One matrix product carries the cost. ``eps_mode = "floor"``: the result is floored at
    ``eps`` (rounding can make it slightly negative, and ``x = w_i`` gives 0), so ``log d^2`` is
    always finite. ``"add"``: ``max(d^2, 0) + eps``, the reference code's ``d^2 + eps``.
    """
    floor, shift = eps_floor_and_shift(eps, eps_mode)
    d2 = torch.addmm((w * w).sum(-1)[None, :], x, w.T, beta=1.0, alpha=-2.0)
    d2 = (d2 + (x * x).sum(-1, keepdim=True)).clamp_min(floor)
    return d2 + shift if shift else d2


def harmonic_logits(x: torch.Tensor, w: torch.Tensor, n: float | torch.Tensor, eps: float = 1e-12,
                    eps_mode: str = "floor") -> torch.Tensor:
    """Harmonic logits ``z_i = -n log d_i = -(n/2) log d_i^2`` (``n`` on the distance).

    ``softmax(z)_i = d_i^-n / sum_j d_j^-n`` is the harmonic probability of the paper; ``d_i^2``
    as :func:`squared_distances` gives it (``eps`` floored or added, see ``eps_mode``). ``n`` may
    be a 0-dim tensor (one member's exponent in a vectorized pack).
    """
    return -0.5 * n * torch.log(squared_distances(x, w, eps, eps_mode))


def triton_interpreter_requested() -> bool:
    """Whether ``TRITON_INTERPRET`` asks Triton to run kernels in its CPU interpreter."""
    return os.environ.get("TRITON_INTERPRET", "0").strip().lower() in ("1", "true", "on")  # as Triton reads it
