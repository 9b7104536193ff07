"""FOCUS vs AdamW vs Signum on the small char-GPT, long enough for beta2 = 0.999, lr chosen apart.

The configs examples/focus-chargpt-{adamw,focus,signum}.toml (2-layer transformer, width 64,
context 64, batch 32, warm-up then cosine decay, weight decay 0.1), run for ``--steps`` steps
(default 2,000: FOCUS's beta2 = 0.999 averages over ~1,000 steps, half the run) with the
bundled text split as train | validation (5%) | tail (10%). Every optimizer gets a factor-2
lr grid around its 400-step best (``LRS``; docs/focus.md), widened upwards by ``--lrs`` in the
docs' runs where the best lay at the top of the grid (FOCUS to 8e-3, Signum to 4e-3); each lr
is trained with ``--seeds`` seeds as one vectorized pack per optimizer, evaluated on the
**validation** block only. The lr with the lowest seed-mean final validation loss is chosen;
its runs are then scored on the **tail** from their final checkpoints (the training text is
the same, so no run is repeated). Prints a markdown table for docs/focus.md.

    python examples/focus-chargpt-long.py [--steps 2000] [--seeds 3] [--out runs/focus-chargpt-long]

A sweep can be extended without repeating finished runs: ``--tag T`` trains into ``<out>/<name>-T``
(``--first-seed`` and ``--lrs name=lr,lr`` set its seeds and grid), and the table always merges
every sweep directory ``<out>/<name>`` and ``<out>/<name>-*`` by (lr, seed). The docs' 3-seed table:

    python examples/focus-chargpt-long.py --seeds 2                    # seeds 0, 1 of every grid
    python examples/focus-chargpt-long.py --only focus --lrs focus=4e-3,8e-3 --seeds 3 --tag hi
    python examples/focus-chargpt-long.py --first-seed 2 --seeds 1 --tag s2   # seed 2
    python examples/focus-chargpt-long.py --only signum --lrs signum=4e-3 --seeds 3 --tag hi
    python examples/focus-chargpt-long.py                                     # the table

(``--seeds 3`` in one go trains the same runs, up to the rounding differences of a larger pack.)

Cost, measured on the shared 2-core machine (one thread): about 0.045 CPU-s per step and member
(``--seeds 2``, 18 members: 1,685 CPU-s; the ``hi`` sweep, 6 members: 543 CPU-s), so 2,000
steps cost about 90 CPU-s a run: the 3-seed table's 36 runs about 54 CPU-minutes. The wall time
is that divided by the share of a core the run gets (it got 54-87% here).
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
#: Per optimizer: the factor-2 lr grid around its best rate of the 400-step scan.
LRS = {"adamw": (5e-3, 1e-2, 2e-2), "focus": (5e-4, 1e-3, 2e-3), "signum": (5e-4, 1e-3, 2e-3)}
SPLIT = ["task.validation_fraction=0.05", "task.evaluate_on='validation'"]


def sweep(name: str, where: Path, steps: int, seeds: int, lrs: tuple[float, ...], first_seed: int) -> Path:
    """Train one optimizer's lr grid x seeds (seeds ``first_seed`` ...) as a vectorized pack,
    evaluated on the validation block, into ``where``; return the sweep directory (kept when
    its sweep.nc exists)."""
    found = sorted(where.glob("*/sweep.nc"))
    if found:
        done = [float(v) for v in np.atleast_1d(xr.load_dataset(found[0])["optimizer.lr"].values)]
        if not np.allclose(sorted(done), sorted(lrs)):
            raise SystemExit(f"{where} holds lrs {done}, not {list(lrs)}: give the new sweep its own --tag")
        return found[0].parent
    command = [sys.executable, "-m", "overtone", "sweep", str(HERE / f"focus-chargpt-{name}.toml"), "--vectorize",
               "--out", str(where), "--seeds", str(seeds),
               "--grid", "optimizer.lr=" + ",".join(f"{lr:g}" for lr in lrs),
               "--set", f"run.seed={first_seed}",
               "--set", f"train.steps={steps}", "--set", f"train.eval_every={steps // 4}",
               "--set", f"train.checkpoint_every={steps}", "--set", f"schedule.warmup_steps={max(30, steps // 20)}"]
    for value in SPLIT:
        command += ["--set", value]
    print(" ".join(command), flush=True)
    subprocess.run(command, check=True)
    return sorted(where.glob("*/sweep.nc"))[0].parent


def collect(name: str, out: Path) -> dict[float, dict[int, tuple[float, Path]]]:
    """Every finished run of optimizer ``name`` under ``out`` (all its sweep directories):
    ``{lr: {seed: (final validation loss, run directory)}}``, the seed read from the run's
    config. A (lr, seed) found twice is an error (two sweeps overlap)."""
    from overtone.config import load_config

    runs: dict[float, dict[int, tuple[float, Path]]] = {}
    for path in sorted([*out.glob(f"{name}/*/sweep.nc"), *out.glob(f"{name}-*/*/sweep.nc")]):
        ds = xr.load_dataset(path)
        final = ds["eval_loss"].dropna("step", how="all").isel(step=-1)  # validation loss (variant, seed)
        lrs = [float(v) for v in np.atleast_1d(ds["optimizer.lr"].values)]
        for v, lr in enumerate(lrs):
            for s in range(ds.sizes["seed"]):
                (run,) = path.parent.glob(f"*-v{v}-s{s}")
                seed = int(load_config(run / "config.toml")["run"]["seed"])
                if seed in runs.setdefault(lr, {}):
                    raise SystemExit(f"{name}: lr {lr:g} seed {seed} found twice ({runs[lr][seed][1]}, {run})")
                runs[lr][seed] = (float(final.isel(variant=v, seed=s)), run)
    return dict(sorted(runs.items()))


def tail_loss(run_dir: Path) -> float:
    """The final checkpoint of ``run_dir`` scored on the text's tail (evaluate_on = 'tail'),
    the engine's own evaluation."""
    import torch
    from overtone.config import load_config
    from overtone.registry import registry as installed
    from overtone.runs import resolve_experiment
    from overtone_torch import checkpoint
    from overtone_torch.build import TrainNet, create_model_and_loss
    from overtone_torch.evaluation import evaluate

    registry = installed()
    saved = load_config(run_dir / "config.toml")
    saved["task"]["evaluate_on"] = "tail"
    engine, config = resolve_experiment(saved, source=str(run_dir / "config.toml"), default_name=run_dir.name,
                                        registry=registry)
    task = engine.task(config)
    net = TrainNet(*create_model_and_loss(config, registry, task))
    path = run_dir / "checkpoint.pt"
    state = checkpoint.load(path if path.exists() else run_dir / "pack-checkpoint.pt")
    net.load_state_dict(state["net"])
    with torch.no_grad():
        loss, _ = evaluate(net.eval(), task.eval_batches(64), torch.device("cpu"))
    return loss


def parse_lrs(items: list[str]) -> dict[str, tuple[float, ...]]:
    """``name=lr,lr`` items over the default grids ``LRS``."""
    grids = dict(LRS)
    for item in items:
        name, _, values = item.partition("=")
        if name not in LRS or not values:
            raise SystemExit(f"--lrs {item!r}: expected NAME=LR,LR with NAME in {list(LRS)}")
        grids[name] = tuple(float(v) for v in values.split(","))
    return grids


def main() -> None:
    """Train (or read back) the sweeps, choose each lr on validation, score it on the tail."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0, help="seed of the first member (run.seed)")
    parser.add_argument("--lrs", nargs="*", default=[], help="NAME=LR,LR: this sweep's grid for NAME")
    parser.add_argument("--tag", default="", help="train into <out>/<name>-<tag> (extends earlier sweeps)")
    parser.add_argument("--train-only", action="store_true", help="train, do not score or print the table")
    parser.add_argument("--out", type=Path, default=Path("runs/focus-chargpt-long"))
    parser.add_argument("--only", nargs="*", default=list(LRS), choices=list(LRS), help="optimizers to run")
    args = parser.parse_args()
    grids = parse_lrs(args.lrs)
    start = time.perf_counter()
    for name in args.only:
        where = args.out / (f"{name}-{args.tag}" if args.tag else name)
        sweep(name, where, args.steps, args.seeds, grids[name], args.first_seed)
    print(f"\ntraining wall time {time.perf_counter() - start:.0f} s", flush=True)
    if args.train_only:
        return
    rows = []
    for name in args.only:
        runs = collect(name, args.out)
        counts = {lr: len(seeds) for lr, seeds in runs.items()}
        if len(set(counts.values())) > 1:
            print(f"warning: {name} has unequal seed counts per lr {counts}; lr chosen on the seed means", flush=True)
        means = {lr: float(np.mean([loss for loss, _ in seeds.values()])) for lr, seeds in runs.items()}
        best = min(means, key=means.__getitem__)
        tails = [tail_loss(run) for _, (_, run) in sorted(runs[best].items())]
        rows.append((name, best, sorted(runs[best]), tails, means, counts))
    print(f"\nwall time {time.perf_counter() - start:.0f} s\n")
    print("| optimizer | lr (best on validation) | tail eval loss, mean +- sd [min, max] | per seed (seeds) "
          "| validation loss per lr (seed mean, n seeds) |")
    print("|---|---|---|---|---|")
    for name, lr, seeds, tails, scan, counts in rows:
        per_seed = ", ".join(f"{v:.4f}" for v in tails)
        scan_text = ", ".join(f"{k:g}: {v:.3f} (n={counts[k]})" for k, v in scan.items())
        edge = " (top of grid)" if lr == max(scan) else " (bottom of grid)" if lr == min(scan) else ""
        print(f"| {name} | {lr:g}{edge} | {np.mean(tails):.4f} +- {np.std(tails, ddof=1) if len(tails) > 1 else 0:.4f} "
              f"[{min(tails):.4f}, {max(tails):.4f}] "
              f"| {per_seed} ({', '.join(map(str, seeds))}) | {scan_text} |")


if __name__ == "__main__":
    main()
