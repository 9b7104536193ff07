"""The FOCUS paper's synthetic narrowing valley: FOCUS vs Adam vs Signum under gradient noise.

Landscape (the paper's toy, rotated by theta = pi/6): with u = p R(theta),
    L(p) = 0.5 a u_0^2 u_1^2 - c u_0,     a = 10, c = 0.1,
a valley along u_0 that narrows as u_0 grows (curvature a u_0^2 across it). Each gradient is
multiplied element-wise by noise ~ N(1, std^2). Start p ~ 1e-4 N(0, I); 1000 steps; for each
optimizer the learning rate is the best of a log grid (by median final loss). Replicates run
as independent rows of one tensor (the optimizers are element-wise). Hyper-parameters as the
paper's toy: Adam betas (0.9, 0.999); FOCUS betas (0.9, 0.9), gamma 0.2; Signum momentum 0.9.

    python examples/focus_valley.py [--replicates 20]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch
from overtone_focus import FOCUS, Signum

A, C, THETA = 10.0, 0.1, math.pi / 6
ROTATION = torch.tensor([[math.cos(THETA), -math.sin(THETA)], [math.sin(THETA), math.cos(THETA)]], dtype=torch.float64)


def loss_per_row(p: torch.Tensor) -> torch.Tensor:
    u = p @ ROTATION
    return 0.5 * A * u[:, 0] ** 2 * u[:, 1] ** 2 - C * u[:, 0]


def run(name: str, lr: float, std: float, replicates: int, steps: int, seed: int) -> np.ndarray:
    g = torch.Generator().manual_seed(seed)
    p = torch.nn.Parameter(torch.randn(replicates, 2, generator=g, dtype=torch.float64) * 1e-4)
    opt = {"Adam": lambda: torch.optim.Adam([p], lr=lr, betas=(0.9, 0.999)),
           "FOCUS": lambda: FOCUS([p], lr=lr, betas=(0.9, 0.9), gamma=0.2),
           "Signum": lambda: Signum([p], lr=lr, momentum=0.9)}[name]()
    for _ in range(steps):
        opt.zero_grad()
        loss_per_row(p).sum().backward()
        with torch.no_grad():
            p.grad.mul_(1.0 + std * torch.randn(p.shape, generator=g, dtype=torch.float64))
        opt.step()
    with torch.no_grad():
        return loss_per_row(p).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=20)
    parser.add_argument("--steps", type=int, default=1000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    lrs = np.logspace(-3, 0, 10)
    stds = [0.0, 1.0, 2.0, 3.0]
    start = time.perf_counter()
    print(f"{args.replicates} replicates x {args.steps} steps; lr = best of {len(lrs)} values in [1e-3, 1]\n")
    print("| noise std | optimizer | best lr | median final loss | 90th percentile final loss |")
    print("|---|---|---|---|---|")
    summary = {}
    for std in stds:
        for name in ("Adam", "FOCUS", "Signum"):
            best = None
            for lr in lrs:
                final = run(name, float(lr), std, args.replicates, args.steps, seed=1)
                finite = np.where(np.isfinite(final), final, np.inf)
                score = float(np.median(finite))
                if best is None or score < best[0]:
                    best = (score, float(lr), float(np.percentile(finite, 90)))
            summary[(std, name)] = best
            print(f"| {std:g} | {name} | {best[1]:.3g} | {best[0]:.4g} | {best[2]:.4g} |")
    print(f"\nwall time {time.perf_counter() - start:.0f} s")
    high = max(stds)
    focus_beats_adam = summary[(high, "FOCUS")][0] < summary[(high, "Adam")][0]
    spread = {n: summary[(high, n)][2] - summary[(high, n)][0] for n in ("FOCUS", "Signum")}
    print(f"\nat noise std {high:g}: FOCUS reaches a lower median loss than Adam: {focus_beats_adam}; "
          f"spread (p90 - median) FOCUS {spread['FOCUS']:.3g} vs Signum {spread['Signum']:.3g}")


if __name__ == "__main__":
    main()
