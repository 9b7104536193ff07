"""FOCUS vs AdamW vs Signum on a small character-level GPT at an equal token budget.

Runs the configs examples/focus-chargpt-{focus,adamw,signum,focus-beta2-0.99}.toml through ``overtone sweep``:
stage 1 tries four learning rates per optimizer (seed 0), stage 2 runs the best one (lowest final
eval loss) with seeds 1 .. ``--seeds``-1 (seed 0 is the scan's run). Prints a markdown table of
the final eval loss (mean, std over seeds, each seed's value) for docs/focus.md. The learning rate is picked on the same eval split that
is reported, for every optimizer alike.

    python examples/focus-chargpt.py [--seeds 3] [--out runs/focus-chargpt]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr

HERE = Path(__file__).resolve().parent
LRS = {"adamw": [1e-3, 3e-3, 1e-2, 3e-2], "focus": [3e-4, 1e-3, 3e-3, 1e-2], "signum": [3e-4, 1e-3, 3e-3, 1e-2],
       "focus-beta2-0.99": [3e-4, 1e-3, 3e-3]}


def sweep(config: Path, out: Path, args: list[str]) -> xr.Dataset:
    """Run ``overtone sweep config args`` and return its combined metrics (variant, seed, step).

    A sweep whose sweep.nc exists under ``out`` is read back, not run again (delete it to rerun).
    """
    result = out / f"{config.stem}-sweep" / "sweep.nc"
    if not result.exists():
        subprocess.run([sys.executable, "-m", "overtone", "sweep", str(config), "--out", str(out), *args], check=True)
    return xr.load_dataset(result)


def final_eval_loss(ds: xr.Dataset) -> xr.DataArray:
    """The last evaluated eval_loss of every (variant, seed)."""
    evaluated = ds["eval_loss"].dropna("step", how="all")
    return evaluated.isel(step=-1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", default="runs/focus-chargpt")
    args = parser.parse_args()
    start = time.perf_counter()
    rows = []
    for name, lrs in LRS.items():
        config = HERE / f"focus-chargpt-{name}.toml"
        scan = final_eval_loss(sweep(config, Path(args.out) / "lr-scan", ["--grid", "optimizer.lr=" + ",".join(map(str, lrs))]))
        losses = scan.isel(seed=0).values
        best = lrs[int(np.nanargmin(losses))]
        print(f"{name}: lr scan {dict(zip(lrs, np.round(losses, 4)))} -> lr {best}", flush=True)
        values = [float(losses[lrs.index(best)])]
        if args.seeds > 1:  # seeds 1 .. n-1 at the chosen lr; seed 0 is the scan's run
            final = final_eval_loss(sweep(config, Path(args.out) / "seeds", [
                "--set", f"optimizer.lr={best}", "--set", "run.seed=1", "--seeds", str(args.seeds - 1)]))
            values += [float(v) for v in final.isel(variant=0).values]
        rows.append((name, best, values, dict(zip(lrs, losses))))
    print(f"\nwall time {time.perf_counter() - start:.0f} s\n")
    print("| optimizer | lr (best of scan) | final eval loss, mean ± std | per seed | lr scan (seed 0) |")
    print("|---|---|---|---|---|")
    for name, lr, values, scan in rows:
        per_seed = ", ".join(f"{v:.4f}" for v in values)
        scan_text = ", ".join(f"{k:g}: {v:.3f}" for k, v in scan.items())
        print(f"| {name} | {lr:g} | {np.mean(values):.4f} ± {np.std(values, ddof=1) if len(values) > 1 else 0:.4f} "
              f"| {per_seed} | {scan_text} |")


if __name__ == "__main__":
    main()
