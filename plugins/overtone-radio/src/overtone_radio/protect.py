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
    whose values replace them: each masked run ``[a, b)`` takes ``x[a - s : b - s]`` or, if
    that does not fit or holds a protected channel, ``x[a + s : b + s]``, where ``s`` is the
    smallest whole number of ripple periods ``P = period_ch`` at least as long as the run,
    ``round(ceil((b - a) / P) P)``, so the ripple continues in phase. When neither stretch is
    clean, ``s`` grows by one period at a time (left, then right) until one is.

    ``-1`` in ``src`` marks channels with no clean stretch of equal length on either side
    (a run longer than the band allows); callers fill those with the spectrum's median.
    Protected values are never copied.
    """
    if isinstance(mask, np.ndarray):
        n, run_list = mask.size, runs(mask)
        protected = mask.astype(bool)
    else:
        run_list = mask
        protected = np.zeros(n, bool)
        for a, b in run_list:
            protected[a:b] = True
    before = np.concatenate([[0], np.cumsum(protected)])  # protected channels in [0, i)

    def clean(lo: int, hi: int) -> bool:
        return 0 <= lo and hi <= n and before[hi] == before[lo]

    pos, src = [], []
    for a, b in run_list:
        length = b - a
        periods = int(np.ceil(length / period_ch))
        found = None
        while found is None:
            shift = max(length, int(round(periods * period_ch)))
            if a - shift < 0 and b + shift > n:
                break
            if clean(a - shift, b - shift):
                found = -shift
            elif clean(a + shift, b + shift):
                found = shift
            periods += 1
        pos.append(np.arange(a, b))
        src.append(np.arange(a, b) + found if found is not None else np.full(length, -1))
    if not pos:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(pos), np.concatenate(src)


def _shifts(length: np.ndarray, period_ch: float) -> np.ndarray:
    """Shift (channels) of a run of ``length``: the smallest whole number of ripple periods
    that is at least as long as the run."""
    return np.maximum(length, np.round(np.ceil(length / period_ch) * period_ch).astype(np.int64))


def runs_of_rows(sub: np.ndarray, channels: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row, start and end (half-open) of every True run of the 2-D mask ``sub | channels``
    (``channels``: a 1-D mask shared by every row), row-major.

    Only the columns masked in some row and their neighbours are looked at: a column outside
    that set is clear in every row, so no run crosses it.
    """
    anywhere = sub.any(axis=0)
    if channels is not None:
        anywhere |= channels
    near = anywhere.copy()  # the masked columns and their neighbours
    near[1:] |= anywhere[:-1]
    near[:-1] |= anywhere[1:]
    ext = np.flatnonzero(near)
    block = sub[:, ext] if channels is None else sub[:, ext] | channels[ext]
    gap = np.diff(ext) > 1  # no run continues across a gap (see above)
    # a run starts where the column before it (across no gap) is clear, and ends likewise
    starts = block.copy()
    starts[:, 1:] &= ~block[:, :-1] | gap
    ends = block
    ends[:, :-1] &= ~block[:, 1:] | gap
    row, first = np.nonzero(starts)
    _, last = np.nonzero(ends)
    return row, ext[first], ext[last] + 1


def substitute(x: np.ndarray, protect: np.ndarray, period_ch: float,
               rows: np.ndarray | None = None, out: np.ndarray | None = None,
               channels: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray | None, np.ndarray]]:
    """Spectra ``x`` (rows, n) with protected channels substituted (see
    :func:`substitution_map`), only in ``rows`` (default: every row). ``protect`` is the
    (rows, n) mask; ``channels``, a 1-D mask protected in every row as well, saves forming
    ``protect | channels``. Returns the substituted copy (written into ``out`` when given, which may be
    ``x`` itself), a bool per row that is True where every channel is protected (that row
    is zeroed: nothing to estimate from), and the channels written as flat indices
    ``(row, channel)``; ``row`` is None when the same channels were written in every row.

    A mask that is one broadcast row (stride 0) is mapped once for all rows. Otherwise every
    run of every row is found at once (:func:`runs_of_rows`) and mapped with array
    arithmetic; only a row where a run's source stretch holds another protected channel goes
    through :func:`substitution_map`.
    """
    if out is None:
        out = x.copy()
    elif out is not x:
        np.copyto(out, x)
    n = x.shape[1]
    empty = np.zeros(len(x), bool)
    none = np.zeros(0, np.int64)
    if rows is None and protect.strides[0] == 0:  # one mask for every row (a broadcast view)
        mask = protect[0] if channels is None else protect[0] | channels
        if mask.all():
            out[:] = 0.0
            empty[:] = True
            return out, empty, (None, none)
        if not mask.any():
            return out, empty, (None, none)
        pos, src = substitution_map(mask, period_ch)
        out[:, pos] = x[:, np.maximum(src, 0)]
        if (src < 0).any():
            keep = np.ones(n, bool)
            keep[pos] = False
            out[:, pos[src < 0]] = np.median(x[:, keep], axis=1, keepdims=True)
        return out, empty, (None, pos)
    todo = np.arange(len(x)) if rows is None else np.asarray(rows, np.int64)
    sub = protect if rows is None else protect[todo]
    row, a, b = runs_of_rows(sub, channels)
    row = todo[row]
    whole = (a == 0) & (b == n)
    if whole.any():
        empty[row[whole]] = True
        out[row[whole]] = 0.0
        row, a, b = row[~whole], a[~whole], b[~whole]
    if row.size == 0:
        return out, empty, (none, none)
    length = b - a
    shift = _shifts(length, period_ch)
    left = a - shift >= 0
    right = ~left & (b + shift <= n)
    src_a = np.where(left, a - shift, np.where(right, a + shift, -1))
    # a run depends on another when its source stretch holds a protected channel of its row;
    # keys row * (n + 1) + channel keep the rows apart in one sorted order
    key_a, key_b = row * (n + 1) + a, row * (n + 1) + b
    probe = row * (n + 1) + np.maximum(src_a, 0)
    hit = np.searchsorted(key_b, probe, side="right")
    overlaps = (src_a >= 0) & (hit < key_a.size)
    overlaps[overlaps] = key_a[hit[overlaps]] < probe[overlaps] + length[overlaps]
    dependent = np.isin(row, row[overlaps])
    # independent runs: one gather for all of them
    keep = ~dependent
    lengths = length[keep]
    total = int(lengths.sum())
    offset = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    run_row = np.repeat(row[keep], lengths)
    pos = np.repeat(a[keep], lengths) + offset
    src = np.where(np.repeat(src_a[keep], lengths) >= 0, np.repeat(src_a[keep], lengths) + offset, -1)
    rows_out, pos_out, src_out = [run_row], [pos], [src]
    for r in np.unique(row[dependent]).tolist():  # rare: runs that feed each other, in order
        mine = row == r
        p, s = substitution_map(list(zip(a[mine].tolist(), b[mine].tolist())), period_ch, n)
        rows_out.append(np.full(p.size, r))
        pos_out.append(p)
        src_out.append(s)
    run_row, pos, src = (np.concatenate(v) for v in (rows_out, pos_out, src_out))
    if out.flags.c_contiguous and x.flags.c_contiguous:  # flat indices: one gather, one put
        start = run_row * n
        out.reshape(-1)[start + pos] = x.reshape(-1)[start + np.maximum(src, 0)]
    else:
        out[run_row, pos] = x[run_row, np.maximum(src, 0)]
    for r in np.unique(run_row[src < 0]).tolist():  # no clean stretch fits: the row's median
        mine = run_row == r
        clean = np.ones(n, bool)
        clean[pos[mine]] = False
        out[r, pos[mine & (src < 0)]] = np.median(x[r, clean])
    return out, empty, (run_row, pos)
