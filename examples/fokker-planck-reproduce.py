"""Fokker-Planck weight dynamics (arXiv 2501.09659) in overtone: the tables of docs/fokker-planck.md.

Trains examples/fokker-planck-autoencoder.toml (digits reconstruction with a 2-bottleneck
auto-encoder) for each seed and optimizer, and prints, per bottleneck matrix and analyzer entry,
W1 and KL between the Fokker-Planck prediction and the empirical density at a few steps, with
the no-dynamics baseline (W1 to the start density), as mean +- std over seeds.

Then the comparison through the outputs: in the trained network (step 2000) both bottleneck
matrices are replaced by their step-10 entries moved, rank for rank, onto a density at step
2000 (the monotone transport map: the entry of rank r of N takes the quantile (r + 1/2) / N):
the Fokker-Planck prediction (fit on all steps, or on steps <= 1000), or the empirical density
(the best any density can do under that map); or by the step-10 entries themselves (no
dynamics). Reported: the evaluation MSE against the images, and the distance of the outputs to
the trained network's (RMS over images and pixels, and W1 of the pooled output values).

Run:  python examples/fokker-planck-reproduce.py [--seeds 3] [--out runs-fp] [--reuse] > fp-results.md
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


MATRICES = ("model.bottleneck1.weight", "model.bottleneck2.weight")


def run(seed: int, optimizer: str, out: Path, reuse: bool = False) -> Path:
    """Train the example under ``seed`` with ``optimizer``; the run directory (with ``reuse``,
    a finished run of that name is kept as it is)."""
    config = copy.deepcopy(load_config(CONFIG))
    config["run"]["seed"] = seed
    config["optimizer"] = dict(OPTIMIZERS[optimizer])
    config["run"]["name"] = name = f"fp-{optimizer}-seed{seed}"
    if reuse and (out / name / "analysis.nc").is_file():
        return out / name
    return run_config(config, source=str(CONFIG), default_name=name, out=out)


def transport(entries: np.ndarray, density: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """``entries`` moved onto ``density`` (cell averages between ``edges``) keeping their ranks:
    the entry of rank r of N takes the (r + 1/2) / N quantile of the density."""
    flat = entries.ravel()
    quantile = (np.argsort(np.argsort(flat)) + 0.5) / flat.size
    cdf = np.concatenate([[0.0], np.cumsum(density * np.diff(edges))])
    cdf = cdf / cdf[-1] + np.arange(cdf.size) * 1e-12  # strictly increasing for interp
    return np.interp(quantile, cdf, edges).reshape(entries.shape)


def output_check(run_dir: Path) -> dict[str, tuple[float, float, float]]:
    """Per variant: (eval MSE, RMS output distance to the trained network, W1 of output values)."""
    import torch
    from overtone_torch import load_run
    from scipy.stats import wasserstein_distance

    loaded = load_run(run_dir)
    params = dict(loaded.net.named_parameters())
    probes = xr.open_dataset(run_dir / "probes.nc", engine="h5netcdf")
    x = torch.cat([xb for xb, _ in loaded.task.eval_batches(4096)])
    trained = {name: params[name].detach().clone() for name in MATRICES}

    def outputs() -> np.ndarray:
        with torch.no_grad():
            return loaded.loss.scores(loaded.model(x)).double().numpy()

    reference = outputs()
    images = x.double().numpy()
    densities = {"Fokker-Planck (a) fit all": ("weight-density-1", "predicted"),
                 "Fokker-Planck (b) fit <= 1000": ("weight-density-2", "predicted"),
                 "empirical density at 2000": ("weight-density-1", "density")}
    variants: dict[str, dict[str, np.ndarray]] = {"trained": {n: trained[n].numpy() for n in MATRICES}}
    start = {n: probes[f"weight_{n.replace('.', '_')}"].sel(step=10).values for n in MATRICES}
    for label, (group, variable) in densities.items():
        result = xr.open_dataset(run_dir / "analysis.nc", engine="h5netcdf", group=group)
        variants[label] = {}
        for name in MATRICES:
            part = result.sel(matrix=f"weight_{name.replace('.', '_')}")
            h = float(part["bin_width"])
            edges = np.append(part["w"].values - h / 2, part["w"].values[-1] + h / 2)
            variants[label][name] = transport(start[name], part[variable].sel(step=loaded.step).values, edges)
    variants["no dynamics (step 10)"] = start
    rows = {}
    for label, matrices in variants.items():
        with torch.no_grad():
            for name in MATRICES:
                params[name].copy_(torch.as_tensor(matrices[name], dtype=params[name].dtype))
        out = outputs()
        rows[label] = (float(np.mean((out - images) ** 2)), float(np.sqrt(np.mean((out - reference) ** 2))),
                       float(wasserstein_distance(out.ravel(), reference.ravel())))
    with torch.no_grad():
        for name in MATRICES:
            params[name].copy_(trained[name])
    return rows


def output_table(runs: dict[str, list[Path]]) -> list[str]:
    lines = ["### Through the outputs (both bottleneck matrices replaced in the step-2000 network)", "",
             "| optimizer | bottleneck matrices | eval MSE | RMS output distance to trained | W1 of output values |",
             "|---|---|---|---|---|"]
    for optimizer, dirs in runs.items():
        checks = [output_check(d) for d in dirs]
        for label in checks[0]:
            values = np.array([c[label] for c in checks])  # (seed, 3)
            lines.append(f"| {optimizer} | {label} | {cell(values[:, 0])} | {cell(values[:, 1])} | "
                         f"{cell(values[:, 2])} |")
    return lines


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
    parser.add_argument("--reuse", action="store_true", help="keep finished runs found under --out")
    args = parser.parse_args()
    started = time.time()
    runs = {opt: [run(seed, opt, args.out, args.reuse) for seed in range(args.seeds)] for opt in args.optimizers}
    print("\n".join(tables(runs) + output_table(runs)))
    print(f"\n(wall time {time.time() - started:.0f} s)")


if __name__ == "__main__":
    main()
