"""The float64 NumPy reference of the harmonic loss that every harmonic test checks against.

Independent of the torch code's algebra: distances from explicit differences ``x_r - w_i``.
(A module of its own, not ``conftest``, so that suites sharing a pytest session never mix it up.)
"""

from __future__ import annotations

import numpy as np


def numpy_harmonic(x, w, t, n, eps=0.0, mode="floor"):
    """``(loss, p, gx, gw)`` in float64 for rows ``x``, centres ``w``, targets ``t`` and ``n`` on
    the distance.

    ``D_ri = max(|x_r - w_i|^2, eps)`` (``mode = "floor"``; ``eps = 0``: the plain distance) or
    ``|x_r - w_i|^2 + eps`` (``"add"``); ``p_ri = D_ri^(-n/2) / sum_j D_rj^(-n/2)`` (a max-shifted
    exp of ``-n/2 log D``); loss = mean over kept rows (``t != -100``) of ``-log p_ry``; ``p``
    over the kept rows. Gradients by the chain rule:
    ``d(-log p_y)/dx = sum_i (p_i - [i = y]) (-n) (x - w_i) / D_i`` (0 where the floor is
    active), and the negative of each term for ``w_i``.
    """
    keep = t != -100
    xk, tk = x[keep], t[keep]
    diff = xk[:, None, :] - w[None, :, :]
    raw = (diff**2).sum(-1)
    d2 = np.maximum(raw, eps) if mode == "floor" else raw + eps
    logits = -0.5 * n * np.log(d2)
    logits -= logits.max(1, keepdims=True)
    log_p = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    rows = np.arange(len(tk))
    p = np.exp(log_p)
    coef = p.copy()
    coef[rows, tk] -= 1
    coef *= -n / d2 / max(len(tk), 1)
    if mode == "floor":
        coef = np.where(raw < eps, 0.0, coef)
    gx = np.zeros(x.shape)
    gx[keep] = (coef[:, :, None] * diff).sum(1)
    gw = -(coef[:, :, None] * diff).sum(0)
    return -log_p[rows, tk].mean(), p, gx, gw
