"""The FOCUS paper's narrowing valley (arXiv 2501.12243, Section 3 / Fig. 2): Adam vs Signum vs FOCUS.

The toy as the authors' ``Toy/syn-exp-6.py`` defines it. With ``u = p R(pi/6)`` (R the 2x2 rotation),

    L(p) = 0.5 a u_0^2 u_1^2 - c u_0,        a = 10, c = 0.1,

a valley along u_0 that narrows as u_0 grows (curvature a u_0^2 across it). Each gradient
component is multiplied by independent noise ~ N(1, sigma^2). Start p = 1e-4 N(0, I); 1000 steps;
weight decay ``p <- p - lr wd p`` with the pre-step p, for every optimizer (the toy's form). Adam:
betas (0.9, 0.999), eps 1e-8. FOCUS: betas (0.9, 0.9), gamma 0.2. Signum: momentum 0.9 (the
toy's FOCUS with gamma = 0). For each (optimizer, wd, sigma) the score is the mean final loss over
50 replicates at the best of 20 learning rates in logspace(-3, 0) (the paper's protocol, on a
coarser wd x sigma grid); stability is the spread of the final loss over the replicates at that lr.

The optimizers are overtone's FOCUS and Signum and torch's Adam; every (wd, sigma, replicate) is a
row of one tensor per learning rate (the updates are element-wise), one param group per lr.

    python examples/focus-valley.py [--seeds 0,1,2] [--replicates 50] [--steps 1000]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch
from overtone_focus import FOCUS, Signum

A, C, THETA = 10.0, 0.1, math.pi / 6
R = torch.tensor([[math.cos(THETA), -math.sin(THETA)], [math.sin(THETA), math.cos(THETA)]], dtype=torch.float64)
LRS = np.logspace(-3, 0, 20)
WDS = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
SIGMAS = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
NAMES = ("Adam", "Signum", "FOCUS")


def loss(p: torch.Tensor) -> torch.Tensor:
    """L(p) per row of p (N, 2)."""
    u = p @ R
    return 0.5 * A * u[:, 0] ** 2 * u[:, 1] ** 2 - C * u[:, 0]


def grad(p: torch.Tensor) -> torch.Tensor:
    """dL/dp per row: (a u_0 u_1^2 - c, a u_0^2 u_1) R^T."""
    u = p @ R
    return torch.stack([A * u[:, 0] * u[:, 1] ** 2 - C, A * u[:, 0] ** 2 * u[:, 1]], dim=1) @ R.T


def make(name: str, groups: list[dict]) -> torch.optim.Optimizer:
    if name == "Adam":
        return torch.optim.Adam(groups, betas=(0.9, 0.999), eps=1e-8, foreach=True)
    if name == "FOCUS":
        return FOCUS(groups, betas=(0.9, 0.9), gamma=0.2)
    return Signum(groups, momentum=0.9)


def final_losses(name: str, wd: torch.Tensor, sigma: torch.Tensor, steps: int, seed: int) -> np.ndarray:
    """Final loss (n_lr, n_rows): one row per (wd, sigma) pair given, every learning rate of LRS."""
    g = torch.Generator().manual_seed(seed)
    n = len(wd)
    params = [torch.nn.Parameter(torch.randn(n, 2, generator=g, dtype=torch.float64) * 1e-4) for _ in LRS]
    opt = make(name, [{"params": [p], "lr": float(lr)} for p, lr in zip(params, LRS)])
    decay = [(float(lr) * wd)[:, None] for lr in LRS]
    with torch.no_grad():
        for _ in range(steps):
            before = [p.clone() for p in params]
            for p in params:
                p.grad = grad(p) * (1.0 + sigma[:, None] * torch.randn(n, 2, generator=g, dtype=torch.float64))
            opt.step()
            for p, b, d in zip(params, before, decay):
                p.sub_(d * b)
        return torch.stack([loss(p) for p in params]).numpy()


def score(final: np.ndarray, replicates: int) -> dict[str, np.ndarray]:
    """Per (wd, sigma) cell: best lr by mean final loss; the mean, std and median there."""
    cells = final.reshape(len(LRS), len(WDS), len(SIGMAS), replicates)
    finite = np.where(np.isfinite(cells), cells, np.inf)
    with np.errstate(invalid="ignore"):
        mean = finite.mean(axis=-1)
    mean = np.where(np.isnan(mean), np.inf, mean)
    best = mean.argmin(axis=0)
    pick = np.take_along_axis(finite, best[None, ..., None], axis=0)[0]
    with np.errstate(invalid="ignore"):
        return {"lr": LRS[best], "mean": np.take_along_axis(mean, best[None], axis=0)[0],
                "std": pick.std(axis=-1), "median": np.median(pick, axis=-1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--replicates", type=int, default=50)
    parser.add_argument("--steps", type=int, default=1000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    wd_grid, sigma_grid, _ = np.meshgrid(WDS, SIGMAS, np.arange(args.replicates), indexing="ij")
    wd, sigma = torch.tensor(wd_grid.ravel()), torch.tensor(sigma_grid.ravel())
    start = time.perf_counter()
    scores = {(name, s): score(final_losses(name, wd, sigma, args.steps, s), args.replicates)
              for s in seeds for name in NAMES}
    print(f"{len(seeds)} seeds x {args.replicates} replicates x {args.steps} steps, 20 lrs; "
          f"wall time {time.perf_counter() - start:.0f} s\n")

    print("Best optimizer (lowest mean final loss at its best lr) per cell, seeds " + ", ".join(map(str, seeds))
          + ": A = Adam, S = Signum, F = FOCUS\n")
    print("| wd \\ sigma | " + " | ".join(f"{s:g}" for s in SIGMAS) + " |")
    print("|---|" + "---|" * len(SIGMAS))
    for i, w in enumerate(WDS):
        cells = []
        for j in range(len(SIGMAS)):
            cells.append("".join(min(NAMES, key=lambda n, s=s: scores[(n, s)]["mean"][i, j])[0] for s in seeds))
        print(f"| {w:g} | " + " | ".join(cells) + " |")

    for w in (0.1, 0.0):
        i = WDS.index(w)
        print(f"\nwd = {w:g}: mean final loss at the best lr (seed {seeds[0]}; range over seeds), std over "
              f"replicates at that lr\n")
        print("| sigma | " + " | ".join(f"{n} mean | {n} std | {n} lr" for n in NAMES) + " |")
        print("|---|" + "---|---|---|" * len(NAMES))
        for j, s_ in enumerate(SIGMAS):
            row = []
            for n in NAMES:
                means = [scores[(n, s)]["mean"][i, j] for s in seeds]
                first = scores[(n, seeds[0])]
                row.append(f"{means[0]:.4g} [{min(means):.4g}, {max(means):.4g}] | {first['std'][i, j]:.3g} "
                           f"| {first['lr'][i, j]:.3g}")
            print(f"| {s_:g} | " + " | ".join(row) + " |")

    high = len(SIGMAS) - 1
    for j in (high, high - 2):
        print(f"\nsigma = {SIGMAS[j]:g}: mean final loss at the best lr (mean over seeds), FOCUS below Adam in how "
              "many seeds, and the spread (std over replicates at the best lr) of Signum over FOCUS's\n")
        print("| wd | Adam | Signum | FOCUS | FOCUS < Adam | Signum std / FOCUS std (median over seeds) |")
        print("|---|---|---|---|---|---|")
        for i, w in enumerate(WDS):
            means = {n: np.mean([scores[(n, s)]["mean"][i, j] for s in seeds]) for n in NAMES}
            below = sum(scores[("FOCUS", s)]["mean"][i, j] < scores[("Adam", s)]["mean"][i, j] for s in seeds)
            ratio = np.median([scores[("Signum", s)]["std"][i, j] / scores[("FOCUS", s)]["std"][i, j] for s in seeds])
            print(f"| {w:g} | {means['Adam']:.4f} | {means['Signum']:.4f} | {means['FOCUS']:.4f} | "
                  f"{below}/{len(seeds)} | {ratio:.2f} |")
    wins = {n: sum(min(NAMES, key=lambda m, s=s, i=i: scores[(m, s)]["mean"][i, high]) == n
                   for s in seeds for i in range(len(WDS))) for n in NAMES}
    ratio = [scores[("Signum", s)]["std"][i, high] / scores[("FOCUS", s)]["std"][i, high]
             for s in seeds for i in range(len(WDS))]
    print(f"\nsigma = {SIGMAS[high]:g}, over all wd and seeds: best-optimizer counts {wins}; "
          f"Signum/FOCUS spread of final loss at best lr: median ratio {np.median(ratio):.2f} "
          f"(min {min(ratio):.2f}, max {max(ratio):.2f})")


if __name__ == "__main__":
    main()
