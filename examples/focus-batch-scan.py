"""FOCUS batch-size scan on digits (docs/focus.md, "Batch-size scan on digits").

AdamW, Signum and FOCUS (gamma 0.2 and 0.4, betas (0.9, 0.99)) on examples/focus-batch-digits.toml
(5 x 128 MLP, 400 steps, weight decay 0.1 on matrices), batch sizes 2, 8, 32, 128 and 512, lr in
{3e-4, 1e-3, 3e-3} per optimizer, plus {3e-5, 1e-4} at batch sizes 2 and 8, 3 seeds: 228 runs,
trained as vectorized packs (one pack per optimizer, batch size and grid). Prints the best final eval accuracy per (optimizer, batch size): the
lr with the highest seed-mean, with the seeds' min and max.

    python examples/focus-batch-scan.py runs/focus-batch          # trains, then prints
    python examples/focus-batch-scan.py runs/focus-batch --table  # prints from finished sweeps

About 14 minutes on a loaded 2-core CPU (load 7-15, one thread).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
import xarray as xr

CONFIG = Path(__file__).with_name("focus-batch-digits.toml")
#: (batch sizes, learning rates, directory suffix): the main grid, and two lower rates for the
#: smallest batches, where the sign methods' best rate was the main grid's lowest
GRIDS = (("2,8,32,128,512", "3e-4,1e-3,3e-3", ""), ("2,8", "3e-5,1e-4", "-low"))
SEEDS = 3
OPTIMIZERS = {  # label: (--set values, extra --grid)
    "adamw": (["optimizer.name=adamw"], []),
    "signum": (["optimizer.name=signum", "optimizer.momentum=0.9"], []),
    "focus": (["optimizer.name=focus", "optimizer.betas=[0.9, 0.99]"], ["optimizer.gamma=0.2,0.4"]),
}


def train(out: Path) -> None:
    """One vectorized sweep per optimizer over lr x batch size (x gamma) x seeds."""
    for batches, lrs, suffix in GRIDS:
        for label, (sets, grids) in OPTIMIZERS.items():
            command = ["overtone", "sweep", str(CONFIG), "--vectorize", "--seeds", str(SEEDS),
                       "--out", str(out / f"{label}{suffix}"), "--set", f"run.name=focus-batch-{label}",
                       "--grid", f"optimizer.lr={lrs}", "--grid", f"train.batch_size={batches}"]
            for value in sets:
                command += ["--set", value]
            for grid in grids:
                command += ["--grid", grid]
            print(" ".join(command), flush=True)
            subprocess.run(command, check=True)


def rows(out: Path):
    """(optimizer label, batch, best lr, mean, min, max, per-lr means) from the sweeps' sweep.nc."""
    for label in OPTIMIZERS:
        groups: dict[tuple, dict[float, np.ndarray]] = {}
        for _, _, suffix in GRIDS:
            found = sorted((out / f"{label}{suffix}").glob("*/sweep.nc"))
            if not found:
                continue
            sweep = xr.open_dataset(found[0]).load()
            final = sweep["eval_acc"].dropna("step", how="all").isel(step=-1)  # (variant, seed)
            keys = {n: sweep[n].values for n in sweep.coords if n not in ("variant", "seed", "step")}
            for v in range(sweep.sizes["variant"]):
                gamma = float(keys["optimizer.gamma"][v]) if "optimizer.gamma" in keys else None
                batch = int(keys["train.batch_size"][v])
                lr = float(keys["optimizer.lr"][v])
                groups.setdefault((gamma, batch), {})[lr] = final.isel(variant=v).values
        for (gamma, batch), by_lr in sorted(groups.items(), key=lambda kv: (str(kv[0][0]), kv[0][1])):
            name = label if gamma is None else f"{label} gamma {float(gamma):g}"
            best = max(by_lr, key=lambda lr: np.nanmean(by_lr[lr]))
            acc = by_lr[best]
            yield name, batch, best, np.nanmean(acc), np.nanmin(acc), np.nanmax(acc), {
                lr: np.nanmean(a) for lr, a in sorted(by_lr.items())}


def main() -> None:
    """Train the sweeps (unless --table) and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, nargs="?", default=Path("runs/focus-batch"))
    parser.add_argument("--table", action="store_true", help="only print the table of finished sweeps")
    args = parser.parse_args()
    if not args.table:
        train(args.out)
    print("| optimizer | batch | best lr | final eval acc, mean [min, max] over seeds | seed-mean per lr |")
    print("|---|---|---|---|---|")
    for name, batch, lr, mean, lo, hi, per_lr in rows(args.out):
        means = ", ".join(f"{rate:g}: {m:.3f}" for rate, m in per_lr.items())
        print(f"| {name} | {batch} | {lr:g} | {mean:.3f} [{lo:.3f}, {hi:.3f}] | {means} |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
