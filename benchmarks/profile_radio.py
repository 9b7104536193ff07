"""Where the default FFT standing-wave filter spends its time on the FAST benchmark data
(512 spectra x 65,536 channels float32, as ``bench_radio.py --speed-only``).

    python benchmarks/profile_radio.py [--spectra 512] [--rounds 9]

Prints, each as the median and minimum over ``rounds`` calls:

1. the phases of one call of the default filter: before the plan (masks, output buffer), the
   plan (guide spectrum, junk edges, line search, delay search, second line look; the
   adaptive-width measurement and the output prefill run beside it), the wait for the
   adaptive width, the batches (substitution, FFTs, thresholds) and the rest (the output
   Dataset), each as wall time, process CPU time and core use, CPU / (cores x wall): 1.0
   when every core works throughout, 0.5 on 2 cores for a phase one thread does alone;
2. the plan's steps timed alone, one after the other, on one thread;
3. process CPU time and wall time per call of the floor (the bare round trip of
   ``bench_radio.py``), the default, the default without adaptive width, without the line
   search (``lines=False``), without both, Milky Way range only and protection off, each
   one's ratios to the floor's, and its core use (what each feature costs; rounds alternate
   the order). A call's wall ratio to the floor is its CPU ratio times its core use over the
   floor's: it beats its CPU ratio only by keeping the cores busier than the floor does.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import overtone_radio.fftfilter as ff  # noqa: E402
from bench_radio import floor_threaded  # noqa: E402
from overtone_radio import ripples  # noqa: E402
from overtone_radio.simulate import Observation, simulate  # noqa: E402
from overtone_radio.spectra import (  # noqa: E402
    frequency_axis,
    frequency_chunked_once,
    protection_masks,
)


def stats(values: list[float]) -> str:
    """'median (min)' of a list of seconds, in ms."""
    v = np.asarray(values) * 1e3
    return f"{np.median(v):6.1f} ({v.min():6.1f})"


def core_use(cpu_s: list[float], wall_s: list[float]) -> float:
    """Median over calls of CPU / (cores x wall): 1.0 when every core works throughout."""
    ratio = np.asarray(cpu_s) / np.maximum(np.asarray(wall_s), 1e-9)
    return float(np.median(ratio)) / (os.cpu_count() or 1)


def phases(speed, rounds: int) -> None:
    """Wall time, process CPU time and core use (CPU / (cores x wall)) of the phases of the
    default filter's calls (see the module docstring)."""
    marks: dict[str, tuple[float, float]] = {}
    plan, per = ff.FFTStandingWave.plan, ff.per_spectrum

    def now() -> tuple[float, float]:
        return time.perf_counter(), time.process_time()

    def timed_plan(self, *a, **k):
        marks["plan0"] = now()
        try:
            return plan(self, *a, **k)
        finally:
            marks["plan1"] = now()

    def timed_per(*a, **k):
        marks["batch0"] = now()
        try:
            return per(*a, **k)
        finally:
            marks["batch1"] = now()

    ff.FFTStandingWave.plan, ff.per_spectrum = timed_plan, timed_per
    order = ("start", "plan0", "plan1", "batch0", "batch1", "end")
    try:
        f = ff.FFTStandingWave()
        f(speed)
        rows = []
        for _ in range(rounds):
            marks["start"] = now()
            _ = f(speed)["spectrum"].values
            marks["end"] = now()
            rows.append([marks[k] for k in order])
    finally:
        ff.FFTStandingWave.plan, ff.per_spectrum = plan, per
    names = ("before the plan", "plan", "wait for the width", "batches", "after", "total")
    spans = [(i, i + 1) for i in range(5)] + [(0, 5)]
    print("default filter, per phase: wall ms and process CPU ms, median (min); core use "
          "(median CPU / (cores x wall)):")
    for name, (a, b) in zip(names, spans):
        wall = [r[b][0] - r[a][0] for r in rows]
        used = [r[b][1] - r[a][1] for r in rows]
        print(f"  {name:20s} wall {stats(wall)}  CPU {stats(used)}  use {core_use(used, wall):.2f}")


def plan_steps(speed, rounds: int) -> None:
    """The plan's steps timed alone on one thread."""
    f = ff.FFTStandingWave()
    axis = frequency_axis(speed)
    data = frequency_chunked_once(speed["spectrum"])

    def best(fn):
        times = []
        for _ in range(rounds):
            t = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t)
        return out, stats(times)

    (protect, channels), t_masks = best(
        lambda: protection_masks(speed, data, axis, f.protect_ranges_mhz)
    )
    guide, t_guide = best(lambda: ripples.guide_spectrum(data, protect))
    junk, t_junk = best(lambda: ripples.edge_mask(axis.n, ripples.junk_edges(guide, axis.step_mhz)))
    shared = np.zeros(axis.n, bool) if channels is None else channels.copy()
    lines, t_lines = best(lambda: ripples.guide_lines(guide, axis, junk | shared))
    shared |= junk | lines
    filled = ripples.fill_gaps(guide, shared)
    name = f.preset(speed)
    windows = list(ripples.PRESETS[name]) if name else []
    found, t_search = best(
        lambda: ripples.find_ripple_delays(
            filled,
            axis,
            min_us=f.search_range_us[0],
            max_us=f.search_range_us[1],
            p_false=f.search_p,
            skip=windows,
        )
    )
    windows = ff._usable(windows + found, axis)
    keep = max(1, int(round(f.keep_us * axis.n * axis.width_mhz)))
    (clean, _), t_second = best(
        lambda: ff.remove_standing_waves(
            np.where(np.isfinite(guide), guide, np.nan)[None, :],
            (shared | ~np.isfinite(guide))[None, :],
            workers=1,
            step_mhz=axis.step_mhz,
            windows_us=windows,
            nsigma=f.nsigma,
            reference_us=f.reference_us,
            keep_bins=keep,
            robust_edges=True,
        )
    )
    _, t_lines2 = best(lambda: ripples.guide_lines(clean[0], axis, junk | shared))
    kwargs = f._kwargs(axis, data, windows, f.reference_us, shared)
    _, t_width = best(lambda: f._extents(data, protect, kwargs))
    _, t_width1 = best(lambda: f._extents(data, protect, {**kwargs, "workers": 1}))
    print("plan steps alone, wall ms, median (min):")
    for label, t in (
        ("protection masks", t_masks),
        ("guide spectrum", t_guide),
        ("junk edges", t_junk),
        ("line search", t_lines),
        ("delay search", t_search),
        ("second look: filter", t_second),
        ("second look: lines", t_lines2),
        ("adaptive width, 2 threads", t_width),
        ("adaptive width, 1 thread", t_width1),
    ):
        print(f"  {label:26s} {t}")


def cpu(speed, rounds: int) -> None:
    """Process CPU time per call, round robin, and its ratio to the floor's."""
    x = np.ascontiguousarray(speed["spectrum"].values)
    no_mask = speed.drop_vars("source_mask")
    default = ff.FFTStandingWave()
    fixed = ff.FFTStandingWave(adaptive_width=False)
    no_lines = ff.FFTStandingWave(lines=False)
    fixed_no_lines = ff.FFTStandingWave(adaptive_width=False, lines=False)
    bare = ff.FFTStandingWave(protect=False)
    fns = {
        "floor": lambda: floor_threaded(x),
        "default": lambda: default(speed)["spectrum"].values,
        "default, fixed width": lambda: fixed(speed)["spectrum"].values,
        "default, no line search": lambda: no_lines(speed)["spectrum"].values,
        "fixed width, no lines": lambda: fixed_no_lines(speed)["spectrum"].values,
        "Milky Way range only": lambda: default(no_mask)["spectrum"].values,
        "protection off": lambda: bare(speed)["spectrum"].values,
    }
    times: dict[str, list[float]] = {k: [] for k in fns}
    walls: dict[str, list[float]] = {k: [] for k in fns}
    for fn in fns.values():
        fn()
    for r in range(rounds):
        for k, fn in list(fns.items())[:: 1 if r % 2 == 0 else -1]:
            t, w = time.process_time(), time.perf_counter()
            fn()
            times[k].append(time.process_time() - t)
            walls[k].append(time.perf_counter() - w)
    floor = float(np.median(times["floor"]))
    floor_wall = float(np.median(walls["floor"]))
    print("process CPU ms per call, median (min); floor CPU / CPU; wall ms median; floor wall "
          "/ wall; core use (median CPU / (cores x wall)):")
    for k, v in times.items():
        wall = float(np.median(walls[k]))
        print(f"  {k:24s} {stats(v)}  {floor / float(np.median(v)):.2f}   {1e3 * wall:6.1f}  "
              f"{floor_wall / wall:.2f}  {core_use(v, walls[k]):.2f}")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--spectra", type=int, default=512)
    p.add_argument("--rounds", type=int, default=9)
    args = p.parse_args()
    speed = simulate(Observation(n_time=args.spectra)).compute()
    phases(speed, args.rounds)
    plan_steps(speed, args.rounds)
    cpu(speed, args.rounds)
    print(f"load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
