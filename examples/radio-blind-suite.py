"""The blind radio suite: the FFT standing-wave filter and its peers on observations drawn
from models the filter was not built from (overtone_radio.blind), protection left to the
methods (no source_mask), many independent simulated hours (one seed = one hour: random
start, drift state, ripple phases and amplitudes, bandpass, sources, noise).

Per scenario, seed and method it writes one CSV row of metrics (overtone_radio.blindsuite),
appending as it goes, then prints the summary table of docs/radio.md ("Blind suite"):
median and spread over seeds.

    python examples/radio-blind-suite.py --seeds 8 --out runs/blind.csv            # everything
    python examples/radio-blind-suite.py --seeds 8 --methods raw,fft,fft-detect,sine-fit \
        --out runs/blind-a.csv                                                       # a part
    python examples/radio-blind-suite.py --summarize runs/blind-a.csv runs/blind-b.csv
    (a row in a later file replaces the same scenario, seed and method of an earlier one)
    HIFAST_PYTHON=/tmp/hifast-venv/bin/python python examples/radio-blind-suite.py \
        --methods hifast-cli --out runs/blind-hifast.csv     # HiFAST's CLI (opt-in, 2 seeds)

HiFAST's command-line pipeline (``hifast-cli``, overtone_radio.hifastcli) runs only where
HIFAST_PYTHON names the Python of an environment with ``hifast==1.4rc3`` (Python 3.9; see
docs/radio.md); without it that row is left out.

Expected wall time, measured per seed and scenario (30 spectra x 65,536 channels, both
twins) on 2 loaded cores (load average 9-15): raw + fft + fft-detect + fft-wide + sine-fit
about 11 s, running-median about 10 s, pybaselines arpls about 40 s. The docs' table
(9 scenarios; 8 seeds of the first five, 4 of running-median, 2 of arpls: the defaults) is
about 9 x (8 x 11 + 4 x 10 + 2 x 40) s = 31 minutes there, in one process; less on a quiet
machine or split over processes with --methods (rows of later files win in --summarize).
The scenarios two-pol and rfi (added later; two-pol runs every method on XX and on YY):

    python examples/radio-blind-suite.py --seeds 8 --scenarios two-pol,rfi \
        --methods raw,fft,fft-detect,rfi+fft,sine-fit --out runs/blind-new.csv   # 8.5 min
    python examples/radio-blind-suite.py --seeds 8 --scenarios control --methods rfi+fft \
        --out runs/blind-new-control.csv                                         # 1 min

took (load average 8-12) per seed: two-pol 0.1 s raw, 1.7 s fft, 3.1 s fft-detect, 5.9 s
rfi+fft, 7.3 s sine-fit (both polarizations); rfi 0.7 s fft, 1.6 s fft-detect, 5.4 s
rfi+fft, 3.6 s sine-fit. HiFAST's CLI takes 75-160 s per run (both twins: two hifast.bld +
hifast.sw calls on 30 spectra), about 40 minutes for 2 seeds of the 11 scenarios.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
from overtone_radio.blind import POLARIZED, SCENARIOS
from overtone_radio.blindsuite import run_one
from overtone_radio.hifastcli import HIFAST_ENV, hifast_python

COLUMNS = ["scenario", "seed", "method", "t0_s", "rms_ratio", "ripple_left", "ripple_left_1ch",
           "flux_kept", "flux_worst", "continuum_kept", "fake", "fake_run", "seconds"]


def run(args: argparse.Namespace) -> Path:
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    methods = args.methods.split(",")
    if "arpls" in methods:
        try:
            import pybaselines  # noqa: F401
        except ImportError:
            print("pybaselines is not installed: the arpls row is left out", file=sys.stderr)
            methods.remove("arpls")
    if "hifast-cli" in methods and not hifast_python():
        print(f"{HIFAST_ENV} is not set: the HiFAST CLI row is left out", file=sys.stderr)
        methods.remove("hifast-cli")
    limits = dict(item.split("=") for item in args.seeds_for.split(",") if item)
    fresh = not out.exists() or args.overwrite
    with out.open("w" if fresh else "a", newline="") as fh:
        writer = csv.DictWriter(fh, COLUMNS)
        if fresh:
            writer.writeheader()
        for scenario in args.scenarios.split(","):
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                names = [m for m in methods if seed - args.first_seed < int(limits.get(m, args.seeds))]
                for row in run_one(scenario, seed, names, n_time=args.n_time):
                    writer.writerow(row)
                    fh.flush()
                print(f"{scenario} seed {seed}: {', '.join(names)}", file=sys.stderr)
    return out


def spread(v: np.ndarray, fmt: str = "{:.3f}") -> str:
    """median [min, max] over seeds (the range: with 2-8 seeds, percentiles mean little)."""
    v = v[np.isfinite(v)]
    if v.size == 0:
        return ""
    if v.size == 1:
        return fmt.format(v[0])
    return f"{fmt.format(np.median(v))} [{fmt.format(v.min())}, {fmt.format(v.max())}]"


def summarize(paths: list[str]) -> str:
    latest = {}  # a row of a later file replaces the same scenario, seed and method
    for p in paths:
        with open(p, newline="") as fh:
            for r in csv.DictReader(fh):
                latest[(r["scenario"], r["seed"], r["method"])] = r
    rows = list(latest.values())
    lines = ["| scenario | method | seeds | RMS ratio | scatter | ripple left (16 ch) | "
             "ripple left (1 ch) | line flux kept | worst line | continuum kept | fake runs |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    labels = [x for s in SCENARIOS
              for x in ([f"{s}:{p}" for p in (*POLARIZED[s], "mean")] if s in POLARIZED else [s])]
    scenarios = [s for s in labels if any(r["scenario"] == s for r in rows)]
    order = ["raw", "fft", "fft-detect", "fft-fixed", "fft-wide", "rfi+fft", "hifast-cli",
             "sine-fit", "running-median", "arpls"]
    shown = {"hifast-cli": "HiFAST CLI (full pipeline)"}
    for s in scenarios:
        for m in order:
            sel = [r for r in rows if r["scenario"] == s and r["method"] == m]
            if not sel:
                continue

            def col(key: str, sel=sel) -> np.ndarray:
                return np.array([float(r[key]) if r[key] not in ("", "nan") else np.nan for r in sel])

            ratio = col("rms_ratio")
            scatter = f"{100 * np.std(ratio) / np.median(ratio):.1f}%" if len(sel) > 2 else ""
            fakes = sum(r["fake_run"] == "True" for r in sel)
            lines.append(" | ".join([
                f"| {s}", shown.get(m, m), str(len(sel)), spread(ratio), scatter, spread(col("ripple_left")),
                spread(col("ripple_left_1ch")), spread(100 * col("flux_kept"), "{:.1f}%"),
                spread(100 * col("flux_worst"), "{:.1f}%"),
                spread(100 * col("continuum_kept"), "{:.1f}%"), f"{fakes}/{len(sel)} |"]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=8, help="simulated hours per scenario")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--methods", default="raw,fft,fft-detect,fft-wide,sine-fit,"
                        "running-median,arpls,hifast-cli",
                        help="also: rfi+fft, fft-fixed (see overtone_radio.blindsuite.methods)")
    parser.add_argument("--seeds-for", default="running-median=4,arpls=2,hifast-cli=2",
                        help="fewer seeds for slow methods, e.g. 'arpls=2'")
    parser.add_argument("--n-time", type=int, default=30, help="1 s spectra per hour drawn")
    parser.add_argument("--out", default="runs/radio-blind.csv")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--summarize", nargs="+", metavar="CSV",
                        help="only print the table of these CSV files")
    args = parser.parse_args(argv)
    paths = args.summarize or [str(run(args))]
    print(summarize(paths))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
