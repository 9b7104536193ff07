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


def substitution_map(mask: np.ndarray | list[tuple[int, int]], period_ch: float,
                     n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """For a 1-D mask, the protected channel indices ``pos`` and the clean channels ``src``
    whose values replace them: each masked run ``[a, b)`` takes ``x[a - s : b - s]`` (or
    ``x[a + s : b + s]`` if that does not fit), where ``s = round(ceil((b - a) / P) * P)`` and
    ``P = period_ch``, so the ripple continues in phase.

    Runs are filled left to right, so a stretch copied from the left that holds an earlier run
    takes that run's sources. ``-1`` in ``src`` marks channels with no clean stretch of equal
    length on either side (a run longer than the band allows); callers fill those with the
    spectrum's median.
    """
    if isinstance(mask, np.ndarray):
        n, run_list = mask.size, runs(mask)
    else:
        run_list = mask
    done: list[tuple[int, int, np.ndarray]] = []

    def resolve(src: np.ndarray) -> np.ndarray:
        for a, b, mapped in done:
            inside = (src >= a) & (src < b)
            if inside.any():
                src[inside] = mapped[src[inside] - a]
        return src

    pending = []
    for a, b in run_list:
        length = b - a
        shift = max(length, int(round(np.ceil(length / period_ch) * period_ch)))
        if a - shift >= 0:
            done.append((a, b, resolve(np.arange(a - shift, b - shift))))
        else:
            pending.append((a, b, shift))
    for a, b, shift in reversed(pending):  # right to left: the right-hand stretches are clean
        src = resolve(np.arange(a + shift, b + shift)) if b + shift <= n else np.full(b - a, -1)
        done.append((a, b, src))
    if not done:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    done.sort()
    return (np.concatenate([np.arange(a, b) for a, b, _ in done]),
            np.concatenate([m for _, _, m in done]))


def substitute(x: np.ndarray, protect: np.ndarray, period_ch: float,
               rows: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray, list[tuple[int, np.ndarray]]]:
    """Spectra ``x`` (rows, n) with protected channels substituted (see
    :func:`substitution_map`), only in ``rows`` (default: every row with a protected
    channel). Returns the substituted copy, a bool per row that is True where every channel is
    protected (that row is zeroed: nothing to estimate from) and, per changed row, the
    channel indices written. Rows with the same runs share one map."""
    out = x.copy()
    n = x.shape[1]
    empty = np.zeros(len(x), bool)
    changed: list[tuple[int, np.ndarray]] = []
    cache: dict[tuple, tuple[np.ndarray, np.ndarray, bool]] = {}
    todo = np.flatnonzero(protect.any(axis=1)) if rows is None else np.asarray(rows)
    if todo.size == 0:
        return out, empty, changed
    for r in todo.tolist():
        key = tuple(runs(protect[r]))
        if key == ((0, n),):
            empty[r] = True
            out[r] = 0.0
            continue
        entry = cache.get(key)
        if entry is None:
            pos, src = substitution_map(list(key), period_ch, n)
            entry = cache[key] = (pos, src, bool((src < 0).any()))
        pos, src, missing = entry
        row = x[r]
        out[r, pos] = row[np.maximum(src, 0)]
        if missing:
            keep = np.ones(n, bool)
            keep[pos] = False
            out[r, pos[src < 0]] = np.median(row[keep])
        changed.append((int(r), pos))
    return out, empty, changed
