"""Speed of overtone-torch's KAN layer (``overtone_torch.kan``) against pykan's ``KANLayer``, forward + backward, same shapes.

Both layers hold the same grid, coefficients and scales (their outputs are checked equal
first); each case times ``layer(x)`` then ``backward`` of a fixed weighted sum, the median of
``--repeats`` after warm-up, on one process with ``--threads`` torch threads. pykan's layer
runs the full Cox-de Boor recursion over all ``G + k`` B-splines and materialises the
``(batch, d_in, d_out)`` edge activations (it returns them for plotting and pruning); ours runs
the recursion over the ``k + 1`` nonzero B-splines and computes the spline sum as one
``(batch, d_in (G + k)) @ (d_in (G + k), d_out)`` matmul. Prints a markdown table (ratio > 1: ours is faster):

    python benchmarks/bench_kan.py [--repeats 10] [--threads 1] [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch
from kan.KANLayer import KANLayer as PykanLayer
from overtone_torch.kan.layer import KANLayer

CASES = [  # (batch, d_in, d_out, G)
    (1024, 1, 16, 5),
    (1024, 16, 16, 20),
    (4096, 64, 64, 5),
    (1024, 128, 128, 10),
]


def pair(d_in: int, d_out: int, grid_size: int, device: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    """A pykan layer and ours with identical state."""
    theirs = PykanLayer(in_dim=d_in, out_dim=d_out, num=grid_size, k=3, device=device)
    ours = KANLayer(d_in, d_out, grid_size=grid_size, order=3).to(device)
    with torch.no_grad():
        for name in ("grid", "coef", "scale_base", "scale_sp", "mask"):
            getattr(ours, name).copy_(getattr(theirs, name))
    return ours, theirs.to(device)


def step_time(forward, x: torch.Tensor, weights: torch.Tensor, repeats: int, device: str) -> float:
    """Median seconds of forward + backward."""
    times = []
    for i in range(repeats + 3):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        (forward(x) * weights).sum().backward()
        if device == "cuda":
            torch.cuda.synchronize()
        if i >= 3:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, device {args.device}, "
          f"{args.threads} thread(s), float32, median of {args.repeats}; load {os.getloadavg()[0]:.1f}\n")
    print("| batch | d_in -> d_out | G (k = 3) | pykan 0.2 ms | overtone ms | ratio | max abs diff |")
    print("|---|---|---|---|---|---|---|")
    for batch, d_in, d_out, grid_size in CASES:
        ours, theirs = pair(d_in, d_out, grid_size, args.device)
        x = (torch.rand(batch, d_in, device=args.device) * 2 - 1)
        weights = torch.randn(batch, d_out, device=args.device)
        difference = (ours(x) - theirs(x)[0]).abs().max().item()
        t_theirs = step_time(lambda v, layer=theirs: layer(v)[0], x, weights, args.repeats, args.device)
        t_ours = step_time(ours, x, weights, args.repeats, args.device)
        print(f"| {batch} | {d_in} -> {d_out} | {grid_size} | {t_theirs * 1e3:.2f} | {t_ours * 1e3:.2f} | "
              f"{t_theirs / t_ours:.1f}x | {difference:.1e} |")


if __name__ == "__main__":
    main()
