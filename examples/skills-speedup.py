"""A speed-up motivated by the Domino model, tried on a real network (arXiv 2501.12391).

The Domino model says a network that shares its parameters among skills learns them one after
another, while one module per skill learns them side by side. Here the change is made on a real
network trained with overtone on ``multitask-sparse-parity`` (6 skills, 24 data bits, 3-bit
parities, p_k ~ k^-1.5, AdamW 1e-3, batch 256): the 2 x 256 MLP of
``examples/skills-sparse-parity.toml`` (baseline) against the ``modular-mlp`` of
``examples/skills-sparse-parity-modular.toml`` (six task-gated modules of 2 x 42 units), same
seeds, same data stream; and the same MLP trained with ``loss-weighted-cross-entropy`` (each
example's loss weighted by l / mean l, the re-weighting in the paper's reference code;
``examples/skills-sparse-parity-reweighted.toml``). Reported per seed: the first evaluation step at which the evaluation
loss (mean over skills, every skill weighted equally) falls below ``--target`` and at which
every skill passes 90% evaluation accuracy.

Run:  python examples/skills-speedup.py [--seeds 3] [--steps 3000] [--target 0.1]
Wall time on a loaded 2-core machine: about 5 minutes a seed (three networks). With ``--out``,
a run directory that already holds metrics.nc is read instead of trained again.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from tempfile import mkdtemp

import numpy as np
import xarray as xr

CONFIGS = {"baseline MLP (2 x 256)": "skills-sparse-parity.toml",
           "modular MLP (6 x 2 x 42)": "skills-sparse-parity-modular.toml",
           "baseline MLP, loss re-weighted (gamma 1)": "skills-sparse-parity-reweighted.toml"}


def first_step(steps: np.ndarray, reached: np.ndarray) -> float:
    """The first step where ``reached`` holds (nan if never)."""
    return float(steps[np.argmax(reached)]) if reached.any() else float("nan")


def run(name: str, seed: int, steps: int, out: Path) -> dict[str, object]:
    """Train one network; return its steps to target and per-skill 90% steps."""
    import torch
    from overtone.config import load_config
    from overtone.runs import run_config

    torch.set_num_threads(1)
    config = load_config(Path(__file__).with_name(CONFIGS[name]))
    config["run"].update(seed=seed, name=f"{Path(CONFIGS[name]).stem}-s{seed}")
    config["train"]["steps"] = steps
    run_dir = out / config["run"]["name"]
    if not (run_dir / "metrics.nc").exists():
        run_dir = run_config(config, source=CONFIGS[name], default_name="x", out=out)
    metrics = xr.open_dataset(run_dir / "metrics.nc", engine="h5netcdf")
    speed = float(metrics["examples_per_s"].median())
    metrics = metrics.dropna("step", subset=["eval_loss"])
    acc = metrics["eval_acc_skill"].transpose("step", "skill").values
    at = metrics["step"].values
    return {"loss": metrics["eval_loss"].values, "steps": at, "speed": speed,
            "all90": first_step(at, (acc >= 0.9).all(axis=1)),
            "skill90": [first_step(at, acc[:, k] >= 0.9) for k in range(acc.shape[1])]}


def _spread(values: list[float]) -> str:
    values = [v for v in values if not np.isnan(v)]
    if not values:
        return "never"
    return f"{np.median(values):.0f} ({min(values):.0f} to {max(values):.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--target", type=float, default=0.1)
    parser.add_argument("--out", default=None, help="run directories (default: a temporary one)")
    args = parser.parse_args()
    out = Path(args.out) if args.out else Path(mkdtemp())
    start = time.perf_counter()
    results = {name: [run(name, seed, args.steps, out) for seed in range(args.seeds)]
               for name in CONFIGS}
    print(f"| network | seeds | steps to eval loss < {args.target} | steps until every skill "
          f"passes 90% | per seed: step each skill passes 90% (skills 1..6) | training examples/s (loaded) |")
    print("|---|---|---|---|---|---|")
    for name, runs in results.items():
        to_target = [first_step(r["steps"], r["loss"] < args.target) for r in runs]
        per_seed = "; ".join(", ".join("-" if np.isnan(s) else f"{s:.0f}" for s in r["skill90"])
                             for r in runs)
        print(f"| {name} | {len(runs)} | {_spread(to_target)} | "
              f"{_spread([r['all90'] for r in runs])} | {per_seed} | "
              f"{np.median([r['speed'] for r in runs]):.0f} |")
    base = next(iter(results.values()))
    for name, runs in list(results.items())[1:]:
        ratios = [first_step(b["steps"], b["loss"] < args.target)
                  / first_step(r["steps"], r["loss"] < args.target) for b, r in zip(base, runs)]
        print(f"\nspeed-up of {name} (baseline steps / its steps to target), per seed: "
              f"{', '.join(f'{r:.2f}' for r in ratios)}")
    print(f"\nwall time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
