"""Reproductions for the harmonic loss: grokking delay, data efficiency, embedding structure.

Runs `overtone sweep` on examples/harmonic-modadd.toml with loss.name in {cross-entropy,
harmonic} over seeds (and train fractions), then prints markdown tables for docs/harmonic.md.

    python examples/harmonic_reproduce.py [--seeds 3] [--out runs/harmonic-repro]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
from overtone.io import open_dataset, read_groups
from overtone.sweep import run_sweep

CONFIG = Path(__file__).with_name("harmonic-modadd.toml")
LOSSES = ["cross-entropy", "harmonic"]


def first_step(metrics, threshold: float = 0.9) -> float:
    acc = metrics["eval_acc"].dropna("step")
    above = acc.step.values[acc.values >= threshold]
    return float(above[0]) if above.size else float("nan")


def spread(values: list[float]) -> str:
    finite = [v for v in values if np.isfinite(v)]
    if not finite:
        return "never"
    text = f"{statistics.median(finite):.0f} (range {min(finite):.0f}-{max(finite):.0f})"
    missing = len(values) - len(finite)
    return text + (f", {missing} never" if missing else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--fractions", default="0.2,0.3,0.4,0.5")
    parser.add_argument("--out", default="runs/harmonic-repro")
    args = parser.parse_args()
    out = Path(args.out)

    start = time.perf_counter()
    sweep = run_sweep(CONFIG, grid=[f"loss.name={','.join(LOSSES)}"], seeds=args.seeds, out=out / "delay")
    wall = time.perf_counter() - start
    print(f"## 1. Grokking delay (p = 31, 40% train, {args.seeds} seeds, {wall:.0f} s wall)\n")
    print("| loss | steps to 90% eval accuracy, median (range) | final eval accuracy | top-2 PCA variance of embeddings |")
    print("|---|---|---|---|")
    with open_dataset(sweep) as ds:
        runs = ds.attrs["runs"].splitlines()
        for v, loss in enumerate(LOSSES):
            steps = [first_step(ds.isel(variant=v, seed=s)) for s in range(args.seeds)]
            final = [float(ds["eval_acc"].isel(variant=v, seed=s).dropna("step")[-1]) for s in range(args.seeds)]
            pca = []
            for s in range(args.seeds):
                run = runs[v * args.seeds + s]
                group = read_groups(Path(run) / "analysis.nc")["pca-structure"]
                pca.append(float(np.ravel(group["top_fraction"].values)[-1]))
            print(f"| {loss} | {spread(steps)} | {statistics.median(final):.3f} | "
                  f"{statistics.median(pca):.2f} |")

    print(f"\n## 2. Data efficiency (p = 31, {args.seeds} seeds)\n")
    fractions = args.fractions
    start = time.perf_counter()
    sweep = run_sweep(CONFIG, grid=[f"loss.name={','.join(LOSSES)}", f"task.train_fraction={fractions}"],
                      seeds=args.seeds, out=out / "fraction")
    wall = time.perf_counter() - start
    print(f"Share of seeds reaching 90% eval accuracy within the step budget ({wall:.0f} s wall).\n")
    fraction_values = [float(f) for f in fractions.split(",")]
    print("| loss | " + " | ".join(f"{f:.0%}" for f in fraction_values) + " | smallest fraction that generalises |")
    print("|---|" + "---|" * len(fraction_values) + "---|")
    with open_dataset(sweep) as ds:
        for loss in LOSSES:
            cells, smallest = [], None
            for f in fraction_values:
                v = int(np.flatnonzero((ds["loss.name"].values == loss) & np.isclose(ds["task.train_fraction"].values, f))[0])
                ok = sum(np.isfinite(first_step(ds.isel(variant=v, seed=s))) for s in range(args.seeds))
                cells.append(f"{ok}/{args.seeds}")
                if smallest is None and ok == args.seeds:
                    smallest = f
            print(f"| {loss} | " + " | ".join(cells) + f" | {'none' if smallest is None else f'{smallest:.0%}'} |")


if __name__ == "__main__":
    main()
