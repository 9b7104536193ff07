"""Tables of docs/dynamics.md, "Claims on real runs": DSE/DSMI and neural collapse over the
training of a digits MLP, the DSE noise-dimension toy beside the reference package, and the
key-frequency share of the grokking MLP's embedding before and after grokking.

    overtone sweep examples/dynamics-digits.toml --seeds 3 --vectorize --out runs
    overtone sweep examples/dynamics-digits-early.toml --seeds 3 --vectorize --out runs
    overtone sweep examples/dynamics-digits.toml --seeds 3 --vectorize --out runs \
        --grid optimizer.weight_decay=0.1,1.0 --set run.name=dyn-digits-wd
    overtone sweep examples/dynamics-digits.toml --seeds 3 --vectorize --out runs \
        --set run.name=dyn-digits-sgd --set optimizer.name=sgd --set optimizer.lr=0.05 \
        --set optimizer.momentum=0.9 --set optimizer.weight_decay=5e-4 --set optimizer.decay=all \
        --set schedule.decay=cosine --set schedule.min_lr_ratio=0.01
    overtone sweep examples/grokking-progress.toml --seeds 3 --vectorize --out runs
    python examples/dynamics-claims.py runs            # add --toy for the noise toy alone

Wall time on a loaded 2-core CPU (load 13-16, one thread): the five sweeps about 1.5, 4, 3, 1.5
and 6 minutes, this script 14 s at load 3 and about 2 minutes at load 15: about 20 minutes in all.
Needs overtone-dynamics; the toy's reference column needs `pip install dse-dsmi`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import overtone
import xarray as xr
from overtone_dynamics.diffusion import diffusion_spectral_entropy


def members(root: Path, name: str, variant: int = 0) -> list[Path]:
    """The run directories of sweep ``name``'s members of one variant (seed order)."""
    runs = sorted((root / f"{name}-sweep").glob(f"{name}-v{variant}-s*"))
    if not runs:
        sys.exit(f"no runs of {name} under {root}: run the sweeps in this script's docstring first")
    return runs


def rescaled(hidden: xr.DataArray, target: float) -> xr.DataArray:
    """``hidden`` (step, sample, feature) scaled per step so the median pairwise distance is ``target``."""
    out = hidden.copy()
    for i in range(hidden.sizes["step"]):
        x = hidden.values[i].astype(np.float64)
        sq = (x * x).sum(1)
        d = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0.0))
        out.values[i] = x * (target / np.median(d[np.triu_indices(len(x), 1)]))
    return out


def digits_tables(root: Path) -> None:
    """DSE, DSMI with the labels, and NC1-NC4 per seed at chosen steps, early and long runs."""
    dse = overtone.get("analyzer", "dse").create(variable="hidden")
    dsmi = overtone.get("analyzer", "dsmi").create(variable="hidden")
    nc = overtone.get("analyzer", "neural-collapse").create(
        weight_variable="weight_loss_weight", bias_variable="weight_loss_bias")
    rows: dict[int, list[tuple]] = {}
    for name, steps in (("dyn-digits-early", [10, 20, 50, 100, 200, 300]),
                        ("dyn-digits", [500, 1000, 2000, 3000])):
        for seed, run in enumerate(members(root, name)):
            probes = xr.open_dataset(run / "probes.nc").sel(step=steps).load()
            metrics = xr.open_dataset(run / "metrics.nc").load()
            d = dse(probes)["dse"].values
            mi = dsmi(probes)["dsmi"].values
            scaled = probes.assign(hidden=rescaled(probes["hidden"], 10.0))
            d_scaled = dse(scaled)["dse"].values
            mi_scaled = dsmi(scaled)["dsmi"].values
            collapse = nc(probes)
            norm = np.linalg.norm(probes["hidden"].values, axis=-1).mean(-1)
            for i, step in enumerate(steps):
                acc = metrics.sel(step=step)
                rows.setdefault(step, []).append((
                    seed, float(acc["train_acc"]), float(acc["eval_acc"]), norm[i], d[i], mi[i],
                    d_scaled[i], mi_scaled[i], *(float(collapse[k].values[i]) for k in ("nc1", "nc2", "nc3", "nc4"))))
    head = ("train acc", "eval acc", "mean |h|", "DSE", "DSMI", "DSE (scaled)", "DSMI (scaled)",
            "NC1", "NC2", "NC3", "NC4")
    print("\n## Digits MLP (AdamW, weight decay 0.01): DSE/DSMI (bits, sigma 10, t 1) and NC1-NC4 on"
          " the probe's images, mean [min, max] over seeds 0, 1, 2\n")
    print("| step | " + " | ".join(head) + " |")
    print("|---" * (len(head) + 1) + "|")
    for step in sorted(rows):
        values = np.array([r[1:] for r in rows[step]])
        cells = [f"{m:.3g} [{lo:.3g}, {hi:.3g}]" for m, lo, hi in
                 zip(values.mean(0), values.min(0), values.max(0))]
        print(f"| {step} | " + " | ".join(cells) + " |")


VARIANTS = (("dyn-digits-wd", 0, "AdamW, wd 0.1"), ("dyn-digits-wd", 1, "AdamW, wd 1.0"),
            ("dyn-digits-sgd", 0, "SGD 0.05, momentum 0.9, wd 5e-4 (all weights), cosine"))


def collapse_variants(root: Path, steps=(100, 300, 1000, 3000)) -> None:
    """NC1-NC4 and accuracies of the optimizer variants (sweeps ``dyn-digits-wd``, ``-sgd``)."""
    nc = overtone.get("analyzer", "neural-collapse").create(
        weight_variable="weight_loss_weight", bias_variable="weight_loss_bias")
    print("\n## Digits MLP, other optimizers: NC1-NC4 on the probe's images,"
          " mean [min, max] over seeds 0, 1, 2\n")
    head = ("train acc", "eval acc", "NC1", "NC2", "NC3", "NC4")
    print("| optimizer | step | " + " | ".join(head) + " |")
    print("|---" * (len(head) + 2) + "|")
    for name, variant, label in VARIANTS:
        rows: dict[int, list[tuple]] = {}
        for run in members(root, name, variant):
            probes = xr.open_dataset(run / "probes.nc").sel(step=list(steps)).load()
            metrics = xr.open_dataset(run / "metrics.nc").load()
            collapse = nc(probes)
            for i, step in enumerate(steps):
                acc = metrics.sel(step=step)
                rows.setdefault(step, []).append((float(acc["train_acc"]), float(acc["eval_acc"]),
                                                  *(float(collapse[k].values[i]) for k in ("nc1", "nc2", "nc3", "nc4"))))
        for step in steps:
            values = np.array(rows[step])
            cells = [f"{m:.3g} [{lo:.3g}, {hi:.3g}]" for m, lo, hi in
                     zip(values.mean(0), values.min(0), values.max(0))]
            print(f"| {label} | {step} | " + " | ".join(cells) + " |")


def noise_toy(n: int = 500, seeds: int = 3) -> None:
    """DSE of n points of N(0, I_d) for growing d, overtone beside the reference package."""
    try:
        from dse_dsmi import diffusion_spectral_entropy as reference
    except ImportError:
        reference = None
    print(f"\n## DSE of {n} Gaussian points N(0, I_d) (bits, sigma 10, t 1), mean [min, max] over"
          f" {seeds} seeds; log2 n = {np.log2(n):.3f}\n")
    print("| d | overtone | dse-dsmi 1.1 | max abs difference |")
    print("|---|---|---|---|")
    for d in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024):
        ours, theirs = [], []
        for seed in range(seeds):
            x = np.random.default_rng(seed).standard_normal((n, d))
            ours.append(diffusion_spectral_entropy(x, 10.0, 1.0))
            if reference is not None:
                theirs.append(reference(x, gaussian_kernel_sigma=10, t=1))
        ours_a = np.array(ours)
        cell = f"{ours_a.mean():.4f} [{ours_a.min():.4f}, {ours_a.max():.4f}]"
        if theirs:
            theirs_a = np.array(theirs)
            ref = f"{theirs_a.mean():.4f} [{theirs_a.min():.4f}, {theirs_a.max():.4f}]"
            diff = f"{np.abs(ours_a - theirs_a).max():.1e}"
        else:
            ref, diff = "not installed", ""
        print(f"| {d} | {cell} | {ref} | {diff} |")


def key_frequencies(root: Path) -> None:
    """Share of the embedding's non-DC power in its 5 final key frequencies, per step, and in
    each step's own top 5."""
    fourier = overtone.get("analyzer", "embedding-fourier").create(variable="embeddings", n_keys=5)
    steps = [50, 100, 200, 300, 400, 500, 600, 800, 1000]
    table: dict[int, list[tuple]] = {}
    for seed, run in enumerate(members(root, "grokking-progress")):
        probes = xr.open_dataset(run / "probes.nc")[["embeddings"]].load()
        metrics = xr.open_dataset(run / "metrics.nc").load()
        result = fourier(probes)
        power = result["power"].values[:, 1:]                  # (step, frequency 1..p//2)
        fraction = power / power.sum(1, keepdims=True)
        final_keys = np.argsort(fraction[-1])[::-1][:5]
        step_index = {int(s): i for i, s in enumerate(result["step"].values)}
        for step in steps:
            i = step_index[step]
            acc = metrics.sel(step=step)
            table.setdefault(step, []).append((
                float(acc["train_acc"]), float(acc["eval_acc"]), fraction[i, final_keys].sum(),
                np.sort(fraction[i])[::-1][:5].sum()))
        print(f"seed {seed}: final key frequencies {sorted((final_keys + 1).tolist())}")
    print("\n## Grokking MLP (p = 97): embedding power share, mean [min, max] over seeds 0, 1, 2\n")
    print("| step | train acc | eval acc | share in the final 5 key frequencies | share in that step's top 5 |")
    print("|---|---|---|---|---|")
    for step in steps:
        values = np.array(table[step])
        cells = [f"{m:.3g} [{lo:.3g}, {hi:.3g}]" for m, lo, hi in
                 zip(values.mean(0), values.min(0), values.max(0))]
        print(f"| {step} | " + " | ".join(cells) + " |")
    print(f"\nuniform share of 5 of {power.shape[1]} frequencies: {5 / power.shape[1]:.3f}")


def main() -> None:
    """Print the three tables (or the toy alone with ``--toy``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="?", default=Path("runs"),
                        help="the --out directory of the three sweeps")
    parser.add_argument("--toy", action="store_true", help="only the noise-dimension toy")
    args = parser.parse_args()
    if not args.toy:
        digits_tables(args.runs)
        collapse_variants(args.runs)
        key_frequencies(args.runs)
    noise_toy()


if __name__ == "__main__":
    main()
