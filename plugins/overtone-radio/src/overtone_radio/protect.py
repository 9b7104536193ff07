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
    edges = np.flatnonzero(mask[1:] != mask[:-1]) + 1
    bounds = edges.tolist()
    if mask[0]:
        bounds.insert(0, 0)
    if mask[-1]:
        bounds.append(mask.size)
    return list(zip(bounds[::2], bounds[1::2]))


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


def _single_run(a: int, b: int, n: int, period_ch: float) -> tuple[np.ndarray, int]:
    """Sources of run ``[a, b)`` taken alone (``-1``: none fits) and the side used."""
    length = b - a
    shift = max(length, int(round(np.ceil(length / period_ch) * period_ch)))
    if a - shift >= 0:
        return np.arange(a - shift, b - shift), -shift
    if b + shift <= n:
        return np.arange(a + shift, b + shift), shift
    return np.full(length, -1), 0


def substitute(x: np.ndarray, protect: np.ndarray, period_ch: float,
               rows: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray, list[tuple[int, np.ndarray]]]:
    """Spectra ``x`` (rows, n) with protected channels substituted (see
    :func:`substitution_map`), only in ``rows`` (default: every row with a protected
    channel). Returns the substituted copy, a bool per row that is True where every channel is
    protected (that row is zeroed: nothing to estimate from) and, per changed row (or
    ``slice(None)`` for all rows), the channel indices written.

    A mask that is one broadcast row (stride 0) is mapped once for all rows. Otherwise the
    run edges of all rows are found in one pass; runs whose source stretch holds no other
    protected channel are looked up in a per-run cache; a row whose runs depend on each other goes through :func:`substitution_map`.
    """
    out = x.copy()
    n = x.shape[1]
    empty = np.zeros(len(x), bool)
    changed: list[tuple[int | slice, np.ndarray]] = []
    if rows is None and protect.strides[0] == 0:  # one mask for every row (a broadcast view)
        mask = protect[0]
        if mask.all():
            out[:] = 0.0
            empty[:] = True
        elif mask.any():
            pos, src = substitution_map(mask, period_ch)
            out[:, pos] = x[:, np.maximum(src, 0)]
            if (src < 0).any():
                keep = np.ones(n, bool)
                keep[pos] = False
                out[:, pos[src < 0]] = np.median(x[:, keep], axis=1, keepdims=True)
            changed.append((slice(None), pos))
        return out, empty, changed
    run_cache: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
    row_cache: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {}
    todo = np.flatnonzero(protect.any(axis=1)) if rows is None else np.asarray(rows)
    if todo.size == 0:
        return out, empty, changed
    # run edges of every row in one pass: where the mask changes, plus its ends
    sub = protect[todo]
    flat = np.flatnonzero(sub[:, 1:] != sub[:, :-1])
    rr, cc = np.divmod(flat, n - 1)
    splits = np.searchsorted(rr, np.arange(1, len(todo)))
    edges_per_row = np.split(cc + 1, splits)
    starts, ends = sub[:, 0].tolist(), sub[:, -1].tolist()
    all_r, all_pos, all_src, fills = [], [], [], []
    for i, r in enumerate(todo.tolist()):
        bounds = edges_per_row[i].tolist()
        if starts[i]:
            bounds.insert(0, 0)
        if ends[i]:
            bounds.append(n)
        key = tuple(bounds)
        if key == (0, n):
            empty[r] = True
            out[r] = 0.0
            continue
        entry = row_cache.get(key)
        if entry is None:
            found = list(zip(bounds[::2], bounds[1::2]))
            parts, independent = [], True
            for a, b in found:
                run = run_cache.get((a, b))
                if run is None:
                    src_run, _ = _single_run(a, b, n, period_ch)
                    run = run_cache[(a, b)] = (np.arange(a, b), src_run)
                src_run = run[1]
                if src_run[0] < 0 or sub[i, src_run[0]:src_run[-1] + 1].any():
                    independent = False
                    break
                parts.append(run)
            if independent:
                entry = (np.concatenate([p for p, _ in parts]), np.concatenate([q for _, q in parts]))
            else:
                entry = substitution_map(found, period_ch, n)
            row_cache[key] = entry
        pos, src = entry
        all_r.append(np.full(pos.size, r))
        all_pos.append(pos)
        all_src.append(src)
        if (src < 0).any():
            fills.append((r, pos[src < 0], pos))
        changed.append((int(r), pos))
    if all_r:
        big_r = np.concatenate(all_r)
        out[big_r, np.concatenate(all_pos)] = x[big_r, np.maximum(np.concatenate(all_src), 0)]
    for r, missing, pos in fills:
        keep = np.ones(n, bool)
        keep[pos] = False
        out[r, missing] = np.median(x[r, keep])
    return out, empty, changed
