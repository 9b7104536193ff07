"""Reproductions of "Physics of skill learning" (arXiv 2501.12391) with overtone-skills.

1. The Domino effect in each toy model: skill-onsets over seeds (task vectors differ per seed).
2. Chinchilla-like scaling from the Geometry model: final cross-entropy loss against the number
   of parameters N for several Zipf exponents alpha, fitted with overtone-dynamics' scaling-law
   analyzer (L = L_inf + (N0 / N)^a).

Run:  python examples/skills-reproduce.py [--steps 10000] [--seeds 3] > skills-results.md
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import xarray as xr
from overtone_skills import toy_models as tm
from overtone_skills.onsets import pair_dynamics, skill_onsets


def domino_table(seeds: int) -> list[str]:
    rows = ["| model | seeds | overlap fraction | head start | acceleration | "
            "skills pass 0.5 in frequency order |", "|---|---|---|---|---|---|"]
    p = tm.task_frequencies(10, 2.0)
    lr, n_params, steps = 3e-4, 1000, 1000
    t0 = 1 / (2 * lr * np.sqrt(n_params))
    runs = {
        "geometry (MSE, sign descent)": lambda s: tm.geometry(
            p=p, vectors=tm.task_vectors(10, n_params, np.random.default_rng(s)), steps=steps, lr=lr),
        "geometry (CE, sign descent)": lambda s: tm.geometry(
            p=p, vectors=tm.task_vectors(10, n_params, np.random.default_rng(s)), steps=steps, lr=lr,
            loss="ce"),
        "resource (MSE, N0 = 0.003)": lambda s: tm.resource(p=p, steps=steps, lr=lr,
                                                            n_params=n_params, wasted=0.003),
        "domino": lambda s: tm.domino(n_skills=10, steps=steps, t0=t0),
        "parallel contrast": lambda s: tm.domino(n_skills=10, steps=steps, t0=t0,
                                                 schedule="parallel"),
    }
    for name, make in runs.items():
        n_seeds = seeds if name.startswith("geometry") else 1
        medians, heads, accels, ordered = [], [], [], 0
        for seed in range(n_seeds):
            out = make(seed)
            onset, finish, _ = skill_onsets(out.skill_loss, np.arange(steps), 0.1, 0.9)
            fraction = (finish[:-1] - onset[1:]) / (finish[:-1] - onset[:-1])
            medians.append(np.nanmedian(fraction))
            head, accel = pair_dynamics(out.skill_loss, np.arange(steps), finish, steps // 50)
            heads.append(np.nanmedian(head))
            accels.append(np.nanmedian(accel))
            half = np.argmax(out.skill_level >= 0.5, axis=0)
            reached = (out.skill_level >= 0.5).any(axis=0)
            ordered += bool((np.diff(half[reached]) >= 0).all())
        rows.append(f"| {name} | {n_seeds} | {_spread(medians)} | {_spread(heads)} | "
                    f"{_spread(accels)} | {ordered}/{n_seeds} |")
    return rows


def _spread(values: list[float]) -> str:
    """Median and range over seeds (the value alone for one seed)."""
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{np.median(values):.2f} ({min(values):.2f} to {max(values):.2f})"


def scaling_table(steps: int, seeds: int, alphas: list[float], sizes: list[int],
                  n_tasks: int, batch: int, lr: float) -> list[str]:
    from overtone_dynamics.scaling import ScalingLaw

    rows = ["| alpha | fitted exponent a (95% CI) | L_inf | points | final loss at N = "
            + ", ".join(map(str, sizes)) + " (mean over seeds) |", "|---|---|---|---|---|"]
    for alpha in alphas:
        p = tm.task_frequencies(n_tasks, alpha)
        losses = np.empty((len(sizes), seeds))
        for i, n in enumerate(sizes):
            for seed in range(seeds):
                rng = np.random.default_rng(seed)
                vectors = tm.task_vectors(n_tasks, n, rng, orthogonal=n >= n_tasks)
                out = tm.geometry(p=p, vectors=vectors, steps=steps, lr=lr, loss="ce",
                                  batch_size=batch, rng=rng)
                # the loss under the true frequencies, averaged over the last 5% of steps
                tail = out.skill_loss[-max(steps // 20, 1):]
                losses[i, seed] = float((tail @ p).mean())
        ds = xr.Dataset({"loss": (("N", "seed"), losses)},
                        coords={"N": np.array(sizes, dtype=float)})
        fit = ScalingLaw(form="power", x="N", n_bootstrap=100)(ds)
        names = list(fit["parameter"].values)
        k = names.index("alpha")
        value = fit["estimate"].values[k]
        low, high = fit["ci_low"].values[k], fit["ci_high"].values[k]
        l_inf = fit["estimate"].values[names.index("L_inf")]
        finals = ", ".join(f"{v:.3g}" for v in losses.mean(axis=1))
        rows.append(f"| {alpha:g} | {value:.2f} ({low:.2f} to {high:.2f}) | {l_inf:.3g} | "
                    f"{losses.size} | {finals} |")
    return rows


def network_table(seeds: int, steps: int) -> list[str]:
    """The Domino effect in an MLP on multitask sparse parity (examples/skills-sparse-parity.toml)."""
    from pathlib import Path
    from tempfile import mkdtemp

    from overtone.config import load_config
    from overtone.runs import run_config
    from overtone_skills.onsets import SkillOnsets

    config = load_config(Path(__file__).with_name("skills-sparse-parity.toml"))
    out = Path(mkdtemp())
    rows = ["| seed | overlap fraction | head start | acceleration | step each skill passes 90% "
            "eval accuracy (skills 1..n) |", "|---|---|---|---|---|"]
    for seed in range(seeds):
        config["run"].update(seed=seed, name=f"seed{seed}")
        config["train"]["steps"] = steps
        run_dir = run_config(config, source="skills-sparse-parity.toml", default_name="x", out=out)
        metrics = xr.open_dataset(run_dir / "metrics.nc", engine="h5netcdf")
        metrics = metrics.dropna("step", subset=["eval_loss"])
        result = SkillOnsets(variable="eval_loss_skill", window=4)(metrics)
        acc = metrics["eval_acc_skill"]
        passed = [int(acc.step[np.argmax(acc.sel(skill=k).values >= 0.9)])
                  if (acc.sel(skill=k) >= 0.9).any() else None for k in acc.skill.values]
        rows.append(f"| {seed} | {float(result['median_overlap_fraction']):.2f} | "
                    f"{float(np.nanmedian(result['head_start'])):.2f} | "
                    f"{float(np.nanmedian(result['acceleration'])):.2f} | "
                    f"{', '.join('-' if p is None else str(p) for p in passed)} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10000, help="scaling runs' steps")
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--alphas", default="1.5,2,3")
    parser.add_argument("--sizes", default="20,50,100,200,500,1000")
    parser.add_argument("--part", choices=("all", "domino", "scaling", "network"), default="all")
    parser.add_argument("--network-steps", type=int, default=3000)
    args = parser.parse_args()
    start = time.perf_counter()
    if args.part in ("all", "domino"):
        print("## Domino effect in the toy models\n")
        print("\n".join(domino_table(args.seeds)))
    if args.part in ("all", "network"):
        print(f"\n## MLP on multitask sparse parity ({args.network_steps} steps)\n")
        print("\n".join(network_table(args.seeds, args.network_steps)))
    if args.part in ("domino", "network"):
        return
    print(f"\n## Geometry-model scaling ({args.tasks} tasks, CE, batch {args.batch}, "
          f"lr {args.lr}, {args.steps} steps, {args.seeds} seeds)\n")
    print("\n".join(scaling_table(args.steps, args.seeds,
                                  [float(a) for a in args.alphas.split(",")],
                                  [int(n) for n in args.sizes.split(",")],
                                  args.tasks, args.batch, args.lr)))
    print(f"\nwall time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
