"""Optimizer step time on a GPT-2-small-shaped parameter set (124M parameters).

Compared in one process, interleaved over rounds: torch.optim.AdamW(foreach=True), overtone's
FOCUS and Signum, and pytorch-optimizer's FOCUS and SignSGD (its Signum) when installed.
Goals: FOCUS at most 1.0x AdamW's step time, and faster than the peer FOCUS.

    python benchmarks/bench_focus.py [--rounds 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def gpt2_small_shapes() -> list[tuple[int, ...]]:
    """The parameter shapes of GPT-2 small (tied unembedding): 124,439,808 numbers."""
    d, v, ctx = 768, 50257, 1024
    shapes = [(v, d), (ctx, d)]
    for _ in range(12):
        shapes += [(d,), (d,), (3 * d, d), (3 * d,), (d, d), (d,), (d,), (d,), (4 * d, d), (4 * d,), (d, 4 * d), (d,)]
    return shapes + [(d,), (d,)]


def make_optimizers(params_for):
    from overtone_focus import FOCUS, Signum

    makers = {
        "torch AdamW (foreach)": lambda p: torch.optim.AdamW(p, lr=1e-4, foreach=True),
        "overtone FOCUS (foreach)": lambda p: FOCUS(p, lr=1e-4, foreach=True),
        "overtone Signum (foreach)": lambda p: Signum(p, lr=1e-4, foreach=True),
    }
    try:
        import pytorch_optimizer as po

        makers["pytorch-optimizer FOCUS"] = lambda p: po.FOCUS(p, lr=1e-4)
        makers["pytorch-optimizer SignSGD (momentum 0.9)"] = lambda p: po.SignSGD(p, lr=1e-4, momentum=0.9)
    except ImportError:
        pass
    return {name: make(params_for(name)) for name, make in makers.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    shapes = gpt2_small_shapes()
    n = sum(torch.Size(s).numel() for s in shapes)
    params = {}

    def params_for(name):
        torch.manual_seed(0)
        ps = [torch.nn.Parameter(torch.randn(s) * 0.02) for s in shapes]
        for p in ps:
            p.grad = torch.randn_like(p) * 1e-3
        params[name] = ps
        return ps

    optimizers = make_optimizers(params_for)
    times: dict[str, list[float]] = {name: [] for name in optimizers}
    for opt in optimizers.values():
        opt.step()  # state allocation happens on the first step: not timed
    for _ in range(args.rounds):
        for name, opt in optimizers.items():
            start = time.perf_counter()
            opt.step()
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["torch AdamW (foreach)"])
    print(f"{n:,} parameters (GPT-2 small shape), float32, CPU, {args.threads} threads, "
          f"median of {args.rounds} steps each, interleaved\n")
    print("| optimizer | step (ms) | vs AdamW |")
    print("|---|---|---|")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| {name} | {median * 1e3:.0f} | {median / base:.2f}x |")


if __name__ == "__main__":
    main()
