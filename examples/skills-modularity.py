"""The Domino model's modularity result (arXiv 2501.12391), reproduced with overtone-skills.

1. ``--part toy``: time until every skill reaches level 0.9, non-modular (one module) against
   modular (one module of N / n parameters per skill), in the Domino model's closed form and in
   the Geometry model (MSE, sign descent, N = 1000, lr 3e-4, p_k ~ k^-2, seeds = task vectors).
   The Domino model predicts T(1) = (n - 0.1) t0 and T(n) = 0.9 sqrt(n) t0: the learning time
   grows as n without modules and as sqrt(n) with them.
2. ``--part mlp``: the paper's two-task network check (its reference notebook's setting): a
   2-100-100-2 SiLU MLP learns x -> x^2 on task 1 (99% of 1,000 points) and task 2 (1%), full
   batch, Adam lr 5e-4, 1,000 steps; t_k is the first step with task k's MSE below 1e-3. The
   modular network cuts every layer into two blocks of 50 units (block-diagonal weights), one per
   task. Claim: non-modular t2 ~ 2 t1 (Domino), modular t2 ~ t1 (parallel). A third arm trains
   the non-modular network with the loss re-weighting found in the same notebook.

Run:  python examples/skills-modularity.py [--part toy|mlp|all] [--seeds 5] [--mlp-seeds 20]
Wall time on a loaded 2-core machine: toy ~2-3 min; mlp ~15 min for 3 x 20 seeds (4 s of CPU
a run).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from overtone_skills import toy_models as tm

LEVEL = 0.9


def time_to_learn(levels: np.ndarray, level: float = LEVEL) -> float:
    """First step at which every skill has reached ``level`` (nan if never)."""
    done = (levels >= level).all(axis=1)
    return float(np.argmax(done)) if done.any() else float("nan")


def _spread(values: list[float], digits: int = 0) -> str:
    """Median and range over seeds."""
    return (f"{np.median(values):.{digits}f} ({min(values):.{digits}f} to "
            f"{max(values):.{digits}f})")


def toy_table(seeds: int, sizes: list[int], n_params: int = 1000, lr: float = 3e-4,
              alpha: float = 2.0) -> list[str]:
    """Learning time against the number of skills, modular and not, in both models."""
    t0 = 1.0 / (2.0 * lr * np.sqrt(n_params))
    rows = ["| skills n | Domino T(1) / t0 | Domino T(n) / t0 | Domino speed-up | "
            "Geometry T(1) steps | Geometry T(n) steps | Geometry speed-up |",
            "|---|---|---|---|---|---|---|"]
    geo = {1: [], "n": []}
    for n in sizes:
        p = tm.task_frequencies(n, alpha)
        times = {1: [], n: []}
        for m in (1, n):
            steps = int((20 * n if m == 1 else 3 * n) * t0) + 2000
            for seed in range(seeds):
                vectors = tm.modular_task_vectors(n, n_params, m, np.random.default_rng(seed))
                out = tm.geometry(p=p, vectors=vectors, steps=steps, lr=lr)
                times[m].append(time_to_learn(out.skill_level))
        geo[1].append(times[1])
        geo["n"].append(times[n])
        d1 = tm.domino_time_to_learn(n, t0, 1, LEVEL)
        dn = tm.domino_time_to_learn(n, t0, n, LEVEL)
        ratio = [a / b for a, b in zip(times[1], times[n])]
        rows.append(f"| {n} | {d1 / t0:.2f} | {dn / t0:.2f} | {d1 / dn:.2f} | "
                    f"{_spread(times[1])} | {_spread(times[n])} | {_spread(ratio, 2)} |")
    # exponent b of T ~ n^b, least squares on log-log, per seed, over n <= 16 and over all n
    for label, keep in (("n <= 16", [n <= 16 for n in sizes]), ("all n", [True] * len(sizes))):
        idx = [i for i, k in enumerate(keep) if k]
        logn = np.log([sizes[i] for i in idx])
        fits = {key: [np.polyfit(logn, np.log([geo[key][i][s] for i in idx]), 1)[0]
                      for s in range(seeds)] for key in (1, "n")}
        rows.append("")
        rows.append(f"Fitted T ~ n^b over {label} ({seeds} seeds): Geometry non-modular "
                    f"b = {_spread(fits[1], 2)}, modular b = {_spread(fits['n'], 2)}; "
                    f"Domino (level 1) b = 1 and 0.5.")
    return rows


def mlp_run(seed: int, modular: bool, steps: int = 1000, threshold: float = 1e-3,
            fraction: float = 0.01, reweight: bool = False) -> tuple[float, float]:
    """t1, t2 of one two-task run (the notebook's setting; see the module docstring).

    ``reweight``: the loss re-weighting of the paper's notebook, each masked squared error
    ``e`` weighted by ``e / mean e`` held fixed (so the objective is ``mean(e * sg(e) / sg(mean e))``).
    """
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    widths = [2, 100, 100, 2]
    layers = [torch.nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:])]
    masks = []
    for layer in layers:
        mask = torch.ones_like(layer.weight)
        if modular:  # block-diagonal: input/output halves belong to task 1 and task 2
            rows, cols = layer.weight.shape
            mask.zero_()
            mask[: rows // 2, : cols // 2] = 1.0
            mask[rows // 2:, cols // 2:] = 1.0
        masks.append(mask)
    params = [q for layer in layers for q in layer.parameters()]

    def forward(x):
        for i, (layer, mask) in enumerate(zip(layers, masks)):
            x = torch.nn.functional.linear(x, layer.weight * mask, layer.bias)
            if i < len(layers) - 1:
                x = torch.nn.functional.silu(x)
        return x

    num = 1000
    x = torch.rand(num, 2) * 2 - 1
    task2 = np.zeros(num, dtype=bool)
    task2[rng.choice(num, num - int(num * (1 - fraction)), replace=False)] = True
    x[torch.from_numpy(task2), 0] = 0.0
    x[torch.from_numpy(~task2), 1] = 0.0
    target = x**2
    weight = torch.zeros(num, 2)
    weight[torch.from_numpy(~task2), 0] = 1.0
    weight[torch.from_numpy(task2), 1] = 1.0
    optimizer = torch.optim.Adam(params, lr=5e-4)
    t1 = t2 = float("nan")
    for step in range(steps):
        optimizer.zero_grad()
        error = (forward(x) - target) ** 2
        masked = error * weight
        if reweight:
            masked = masked * masked.detach() / masked.detach().mean()
        loss = masked.mean()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            l1 = float(error[~torch.from_numpy(task2), 0].mean())
            l2 = float(error[torch.from_numpy(task2), 1].mean())
        if np.isnan(t1) and l1 < threshold:
            t1 = float(step)
        if np.isnan(t2) and l2 < threshold:
            t2 = float(step)
    return t1, t2


def mlp_table(seeds: int, steps: int) -> list[str]:
    """t1, t2 and t2 / t1 over seeds for the non-modular and the modular MLP."""
    import torch

    torch.set_num_threads(1)
    rows = ["| network | seeds | t1 | t2 | t2 / t1 | runs with t2 < 2 t1 | both learned, max(t1, t2) "
            "| runs never learning task 2 |", "|---|---|---|---|---|---|---|---|"]
    arms = {"non-modular (100)": (False, False), "modular (2 x 50)": (True, False),
            "non-modular, loss re-weighted": (False, True)}
    for label, (modular, reweight) in arms.items():
        t1s, t2s = zip(*(mlp_run(seed, modular, steps, reweight=reweight) for seed in range(seeds)))
        t1s, t2s = np.array(t1s), np.array(t2s)
        learned = ~np.isnan(t1s) & ~np.isnan(t2s)
        ratio = list(t2s[learned] / t1s[learned])
        rows.append(f"| {label} | {seeds} | "
                    f"{_spread(list(t1s[learned]))} | {_spread(list(t2s[learned]))} | "
                    f"{_spread(ratio, 2)} | {int(np.sum(np.array(ratio) < 2))}/{learned.sum()} | "
                    f"{_spread(list(np.maximum(t1s, t2s)[learned]))} | {int(np.isnan(t2s).sum())} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("all", "toy", "mlp"), default="all")
    parser.add_argument("--seeds", type=int, default=5, help="Geometry-model seeds")
    parser.add_argument("--sizes", default="2,4,8,16,32,64")
    parser.add_argument("--mlp-seeds", type=int, default=20)
    parser.add_argument("--mlp-steps", type=int, default=1000)
    args = parser.parse_args()
    start = time.perf_counter()
    if args.part in ("all", "toy"):
        print(f"## Learning time of n skills to level {LEVEL}, non-modular vs modular\n")
        print("\n".join(toy_table(args.seeds, [int(n) for n in args.sizes.split(",")])))
    if args.part in ("all", "mlp"):
        print("\n## Two tasks (p = 0.99, 0.01) in a non-modular and a modular MLP\n")
        print("\n".join(mlp_table(args.mlp_seeds, args.mlp_steps)))
    print(f"\nwall time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
