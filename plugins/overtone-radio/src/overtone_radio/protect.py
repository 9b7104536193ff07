"""Source protection by substitution (the HiFAST way, arXiv 2411.13016 sec. 3).

Masking channels before an FFT would cut holes whose edges leak into every delay bin.
Instead each protected run of channels is overwritten with a stretch of the same spectrum that
lies a whole number of ripple periods away, so the standing wave continues in phase through the
run while the signal in it (HI emission, RFI, NaN) is gone. The ripple is then estimated on the
substituted spectrum and subtracted from the original one, so the source itself is untouched.
"""

from __future__ import annotations

import numpy as np


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Half-open index ranges ``[a, b)`` of the True runs of a 1-D boolean array."""
    padded = np.concatenate(([False], mask, [False]))
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def substitution_index(mask: np.ndarray, period_ch: float) -> np.ndarray:
    """For a 1-D mask of ``n`` channels, an index map ``idx`` (int64, length n) such that
    ``x[idx]`` replaces every masked run ``[a, b)`` by ``x[a - s : b - s]`` (or ``x[a + s : b + s]``
    if that does not fit), where ``s = round(ceil((b - a) / P) * P)`` and ``P = period_ch``.

    Runs are filled left to right, so a stretch copied from the left is already clean. ``-1``
    marks channels with no clean stretch of equal length on either side (a run longer than
    the band allows); callers fill those with the spectrum's median.
    """
    n = mask.size
    idx = np.arange(n)
    pending = []
    for a, b in runs(mask):
        length = b - a
        shift = int(round(np.ceil(length / period_ch) * period_ch))
        shift = max(shift, length)
        if a - shift >= 0:
            idx[a:b] = idx[a - shift:b - shift]
        else:
            pending.append((a, b, shift))
    for a, b, shift in reversed(pending):  # right to left: the right-hand stretches are clean
        if b + shift <= n:
            idx[a:b] = idx[a + shift:b + shift]
        else:
            idx[a:b] = -1
    return idx


def substitute(x: np.ndarray, protect: np.ndarray, period_ch: float) -> tuple[np.ndarray, np.ndarray]:
    """Spectra ``x`` (rows, n) with protected channels substituted (see
    :func:`substitution_index`); also returns a bool per row, True where every channel is
    protected (nothing to estimate from). Rows sharing a mask share one index map."""
    out = x.copy()
    empty = protect.all(axis=1)
    cache: dict[bytes, np.ndarray] = {}
    for r in np.flatnonzero(protect.any(axis=1) & ~empty):
        key = np.packbits(protect[r]).tobytes()
        idx = cache.get(key)
        if idx is None:
            idx = cache[key] = substitution_index(protect[r], period_ch)
        row = x[r]
        filled = row[np.maximum(idx, 0)]
        if (idx < 0).any():
            filled[idx < 0] = np.median(row[~protect[r]])
        out[r] = filled
    return out, empty
