"""Fokker-Planck weight dynamics (arXiv 2501.09659) in overtone: the tables of docs/fokker-planck.md.

Trains examples/fokker-planck-autoencoder.toml (digits reconstruction with a 2-bottleneck
auto-encoder) for each seed and optimizer, and prints, per bottleneck matrix and analyzer entry,
W1 and KL between the Fokker-Planck prediction and the empirical density at a few steps, with
the no-dynamics baseline (W1 to the start density), as mean +- std over seeds.

Run:  python examples/fokker-planck-reproduce.py [--seeds 3] [--out runs-fp] > fp-results.md
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import numpy as np
import xarray as xr
from overtone.config import load_config
from overtone.runs import run_config

CONFIG = Path(__file__).with_name("fokker-planck-autoencoder.toml")
#: analysis.nc groups of the example's three weight-density entries
ENTRIES = {"weight-density-1": "constant, fit on all steps",
           "weight-density-2": "constant, fit on steps <= 1000",
           "weight-density-3": "per-interval"}
SHOWN = (100, 500, 1000, 1500, 2000)
OPTIMIZERS = {"adam": {"name": "adam", "lr": 0.003}, "sgd": {"name": "sgd", "lr": 0.5}}


def run(seed: int, optimizer: str, out: Path) -> Path:
    """Train the example under ``seed`` with ``optimizer``; the run directory."""
    config = copy.deepcopy(load_config(CONFIG))
    config["run"]["seed"] = seed
    config["optimizer"] = dict(OPTIMIZERS[optimizer])
    config["run"]["name"] = name = f"fp-{optimizer}-seed{seed}"
    return run_config(config, source=str(CONFIG), default_name=name, out=out)


def cell(values: np.ndarray, digits: int = 4) -> str:
    """``mean +- std`` over seeds (the sample std, ddof = 1)."""
    if len(values) < 2:
        return f"{values.mean():.{digits}f}"
    return f"{values.mean():.{digits}f} +- {values.std(ddof=1):.{digits}f}"


def at(parts: list[xr.Dataset], name: str, step: int) -> np.ndarray:
    """``name`` at ``step`` in each seed's result."""
    return np.array([float(p[name].sel(step=step)) for p in parts])


def tables(runs: dict[str, list[Path]]) -> list[str]:
    lines = []
    for optimizer, dirs in runs.items():
        loss = np.array([float(xr.open_dataset(d / "metrics.nc", engine="h5netcdf")["eval_loss"]
                               .dropna("step")[-1]) for d in dirs])
        lines += [f"### {optimizer} ({OPTIMIZERS[optimizer]}), {len(dirs)} seeds; final eval MSE {cell(loss)}", ""]
        for group, label in ENTRIES.items():
            results = [xr.open_dataset(d / "analysis.nc", engine="h5netcdf", group=group).load() for d in dirs]
            for matrix in results[0]["matrix"].values:
                parts = [r.sel(matrix=matrix) for r in results]
                entries = int(parts[0]["entries"])
                lines += [f"**{matrix}** ({entries} entries), {label}", "",
                          "| step | W1 prediction | W1 no dynamics | KL prediction [nat] | std empirical | "
                          "std predicted |", "|---|---|---|---|---|---|"]
                for step in SHOWN:
                    w1, static, kl, std, predicted = (at(parts, name, step) for name in (
                        "w1", "w1_static", "kl", "std_empirical", "std_predicted"))
                    lines.append(f"| {step} | {cell(w1)} | {cell(static)} | {cell(kl, 3)} | {cell(std)} | "
                                 f"{cell(predicted)} |")
                ratio = np.array([float(p["w1"].sel(step=SHOWN[-1]) / p["w1_static"].sel(step=SHOWN[-1]))
                                  for p in parts])
                lines += ["", f"W1 prediction / W1 no dynamics at step {SHOWN[-1]}: {cell(ratio, 2)}", ""]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("runs-fp"))
    parser.add_argument("--optimizers", nargs="+", default=list(OPTIMIZERS), choices=list(OPTIMIZERS))
    args = parser.parse_args()
    started = time.time()
    runs = {opt: [run(seed, opt, args.out) for seed in range(args.seeds)] for opt in args.optimizers}
    print("\n".join(tables(runs)))
    print(f"\n(wall time {time.time() - started:.0f} s)")


if __name__ == "__main__":
    main()
