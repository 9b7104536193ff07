"""FOCUS batch-size scan on digits (docs/focus.md, "Batch-size scan on digits").

AdamW, Signum and FOCUS (gamma 0.2 and 0.4, betas (0.9, 0.99)) on examples/focus-batch-digits.toml
(5 x 128 MLP, 400 steps, weight decay 0.1 on matrices), 3 seeds, trained as vectorized packs (one
pack per optimizer and batch size). Prints the best final eval accuracy per (optimizer, batch
size): the lr with the highest seed-mean, with the seeds' median, min and max.

``--norm none`` (the MLP without normalisation): batch sizes 2, 8, 32, 128 and 512, lr in
{3e-4, 1e-3, 3e-3} per optimizer, plus {3e-5, 1e-4} at batch sizes 2 and 8, where the sign
methods' best rate was the main grid's lowest: 228 runs, about 14 minutes on a loaded 2-core
CPU (load 7-15, one thread).

``--norm batch`` (BatchNorm1d after each hidden linear layer, the paper's MNIST MLP): batch
sizes 2, 8, 32, 128, 512 and 1438 (the whole training split, the cap: the engine refuses a
batch larger than the training set, so 2048 cannot run), lr in {3e-4, 1e-3, 3e-3} per optimizer:
216 runs, 18 packs, smallest batches first. Measured: 32 CPU-s for a 15-member AdamW pack at
batch 2 and 150 CPU-s at batch 1438; the whole scan about 12 CPU-minutes, which took about
64 minutes of wall time on the shared 2-core machine at nice 10 (load 11-17).

    python examples/focus-batch-scan.py runs/focus-batch                       # trains, then prints
    python examples/focus-batch-scan.py runs/focus-batch-bn --norm batch
    python examples/focus-batch-scan.py runs/focus-batch-bn --norm batch --table  # prints only
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr

CONFIG = Path(__file__).with_name("focus-batch-digits.toml")
#: Per ``--norm``: (batch sizes, learning rates, directory suffix). Without normalisation the
#: main grid, and two lower rates for the smallest batches, where the sign methods' best rate
#: was the main grid's lowest; with BatchNorm one grid. 1438 is the whole training split (the
#: engine refuses a batch larger than it).
GRIDS = {"none": (((2, 8, 32, 128, 512), (3e-4, 1e-3, 3e-3), ""), ((2, 8), (3e-5, 1e-4), "-low")),
         "batch": (((2, 8, 32, 128, 512, 1438), (3e-4, 1e-3, 3e-3), ""),)}
SEEDS = 3
OPTIMIZERS = {  # label: (--set values, extra --grid)
    "adamw": (["optimizer.name=adamw"], []),
    "signum": (["optimizer.name=signum", "optimizer.momentum=0.9"], []),
    "focus": (["optimizer.name=focus", "optimizer.betas=[0.9, 0.99]"], ["optimizer.gamma=0.2,0.4"]),
}


def train(out: Path, norm: str) -> None:
    """One vectorized sweep per optimizer and batch size over lr (x gamma) x seeds, smallest
    batches first; a sweep whose sweep.nc exists is kept, not rerun (the scan resumes)."""
    for batches, lrs, suffix in GRIDS[norm]:
        for batch in batches:
            for label, (sets, grids) in OPTIMIZERS.items():
                where = out / f"{label}{suffix}-b{batch}"
                if list(where.glob("*/sweep.nc")):
                    continue
                command = ["overtone", "sweep", str(CONFIG), "--vectorize", "--seeds", str(SEEDS),
                           "--out", str(where), "--set", f"run.name=focus-batch-{label}",
                           "--grid", "optimizer.lr=" + ",".join(f"{lr:g}" for lr in lrs),
                           "--set", f"train.batch_size={batch}", "--set", f"model.norm={norm!r}"]
                for value in sets:
                    command += ["--set", value]
                for grid in grids:
                    command += ["--grid", grid]
                print(" ".join(command), flush=True)
                subprocess.run(command, check=True)


def rows(out: Path, norm: str):
    """(optimizer label, batch, best lr, mean, median, min, max, per-lr means) from the sweeps'
    sweep.nc files, over the learning rates of :data:`GRIDS` only."""
    for label in OPTIMIZERS:
        groups: dict[tuple, dict[float, np.ndarray]] = {}
        for batches, lrs, suffix in GRIDS[norm]:
            found = sorted((out / f"{label}{suffix}").glob("*/sweep.nc"))  # one sweep over the batch sizes
            found += sorted(out.glob(f"{label}{suffix}-b*/*/sweep.nc"))  # one sweep per batch size
            for path in found:
                sweep = xr.open_dataset(path).load()
                final = sweep["eval_acc"].dropna("step", how="all").isel(step=-1)  # (variant, seed)
                keys = {n: np.atleast_1d(sweep[n].values) for n in sweep.coords if n not in ("variant", "seed", "step")}
                for v in range(sweep.sizes["variant"]):
                    gamma = float(keys["optimizer.gamma"][v]) if "optimizer.gamma" in keys else None
                    batch = int(keys["train.batch_size"][v]) if "train.batch_size" in keys else \
                        int(path.parent.parent.name.rsplit("-b", 1)[1])
                    lr = float(keys["optimizer.lr"][v])
                    if batch in batches and any(np.isclose(lr, rate) for rate in lrs):
                        groups.setdefault((gamma, batch), {})[lr] = final.isel(variant=v).values
        for (gamma, batch), by_lr in sorted(groups.items(), key=lambda kv: (str(kv[0][0]), kv[0][1])):
            name = label if gamma is None else f"{label} gamma {float(gamma):g}"
            best = max(by_lr, key=lambda lr: np.nanmean(by_lr[lr]))
            acc = by_lr[best]
            yield name, batch, best, np.nanmean(acc), np.nanmedian(acc), np.nanmin(acc), np.nanmax(acc), {
                lr: np.nanmean(a) for lr, a in sorted(by_lr.items())}


def main() -> None:
    """Train the sweeps (unless --table) and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, nargs="?", default=Path("runs/focus-batch"))
    parser.add_argument("--table", action="store_true", help="only print the table of finished sweeps")
    parser.add_argument("--norm", choices=tuple(GRIDS), default="none",
                        help="the MLP's [model] norm (batch: BatchNorm1d after each hidden layer)")
    args = parser.parse_args()
    start = time.perf_counter()
    if not args.table:
        train(args.out, args.norm)
        print(f"wall time {time.perf_counter() - start:.0f} s")
    print("| optimizer | batch | best lr | final eval acc, mean; median [min, max] over seeds | seed-mean per lr |")
    print("|---|---|---|---|---|")
    for name, batch, lr, mean, median, lo, hi, per_lr in rows(args.out, args.norm):
        means = ", ".join(f"{rate:g}: {m:.3f}" for rate, m in per_lr.items())
        print(f"| {name} | {batch} | {lr:g} | {mean:.3f}; {median:.3f} [{lo:.3f}, {hi:.3f}] | {means} |")
    table: dict[int, dict[str, str]] = {}
    for name, batch, lr, _, median, lo, hi, _ in rows(args.out, args.norm):
        table.setdefault(batch, {})[name] = f"{median:.3f} [{lo:.3f}, {hi:.3f}] ({lr:g})"
    names = sorted({name for cells in table.values() for name in cells})
    print("\nfinal eval accuracy, median [min, max] over seeds (best lr by seed-mean)\n")
    print("| batch | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for batch, cells in sorted(table.items()):
        print(f"| {batch} | " + " | ".join(cells.get(name, "not run") for name in names) + " |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
