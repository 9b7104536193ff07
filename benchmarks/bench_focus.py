"""Optimizer step time on a GPT-2-small-shaped parameter set (124,439,808 float32 parameters).

Compared in one process, interleaved round by round, all with weight decay 0.1 and the same
torch thread count: torch.optim.AdamW(foreach=True) (the baseline), overtone's FOCUS and Signum
(foreach path, cut into cache blocks on CPU), overtone's FOCUS on whole tensors (the same
foreach calls without the cut: what the cut buys), and pytorch-optimizer's FOCUS and SignSGD
(momentum 0.9, i.e. Signum) with foreach=True, when that package is installed.
Goals: FOCUS at most 1.0x AdamW's step time, and faster than the peer FOCUS.

Each optimizer takes two untimed warm-up steps (state allocation, allocator caches), then
``--rounds`` timed steps; the table gives the median wall time and the median CPU time (process
time; with one thread it is the work done, robust to other processes on a shared machine) and
their ratios to AdamW. Gradients are one shared set of tensors.

    python benchmarks/bench_focus.py [--rounds 7] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import platform
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


def makers(whole_tensors: type) -> dict:
    """Name -> constructor(params) of every optimizer compared."""
    from overtone_focus import FOCUS, Signum

    wd = 0.1
    out = {
        "torch AdamW (foreach)": lambda p: torch.optim.AdamW(p, lr=1e-4, weight_decay=wd, foreach=True),
        "overtone FOCUS (foreach, cache blocks)": lambda p: FOCUS(p, lr=1e-4, weight_decay=wd, foreach=True),
        "overtone FOCUS (foreach, whole tensors)": lambda p: whole_tensors(p, lr=1e-4, weight_decay=wd, foreach=True),
        "overtone Signum (foreach, cache blocks)": lambda p: Signum(p, lr=1e-4, weight_decay=wd, foreach=True),
    }
    try:
        import pytorch_optimizer as po
    except ImportError:
        return out
    out["pytorch-optimizer FOCUS (foreach)"] = lambda p: po.FOCUS(p, lr=1e-4, weight_decay=wd, foreach=True)
    out["pytorch-optimizer SignSGD momentum 0.9 (foreach)"] = lambda p: po.SignSGD(
        p, lr=1e-4, momentum=0.9, weight_decay=wd, foreach=True)
    return out


def whole_tensor_focus():
    """overtone's FOCUS with the CPU cache cut switched off (block size None) during its steps."""
    import overtone_focus.blocks as blocks
    from overtone_focus import FOCUS

    class WholeTensorFOCUS(FOCUS):
        def step(self, closure=None):
            saved, blocks.CPU_BLOCK = blocks.CPU_BLOCK, None
            try:
                return super().step(closure)
            finally:
                blocks.CPU_BLOCK = saved

    return WholeTensorFOCUS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    shapes = gpt2_small_shapes()
    n = sum(torch.Size(s).numel() for s in shapes)
    torch.manual_seed(0)
    grads = [torch.randn(s) * 1e-3 for s in shapes]

    def fresh_params():
        torch.manual_seed(1)
        ps = [torch.nn.Parameter(torch.randn(s) * 0.02) for s in shapes]
        for p, g in zip(ps, grads):
            p.grad = g
        return ps

    optimizers = {name: make(fresh_params()) for name, make in makers(whole_tensor_focus()).items()}
    for opt in optimizers.values():
        opt.step()
        opt.step()
    wall: dict[str, list[float]] = {name: [] for name in optimizers}
    cpu: dict[str, list[float]] = {name: [] for name in optimizers}
    for _ in range(args.rounds):
        for name, opt in optimizers.items():
            c0, w0 = time.process_time(), time.perf_counter()
            opt.step()
            wall[name].append(time.perf_counter() - w0)
            cpu[name].append(time.process_time() - c0)
    base = "torch AdamW (foreach)"
    w_base, c_base = statistics.median(wall[base]), statistics.median(cpu[base])
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{n:,} parameters (GPT-2 small shapes), float32, CPU ({platform.processor() or platform.machine()}), "
          f"torch {torch.__version__}, {args.threads} thread(s), weight decay 0.1, median of {args.rounds} "
          f"interleaved steps after 2 warm-up steps; 1-min load average at the end {load:.1f} on "
          f"{os.cpu_count()} cores\n")
    print("| optimizer | wall (ms) | vs AdamW | CPU (ms) | vs AdamW |")
    print("|---|---|---|---|---|")
    for name in optimizers:
        w, c = statistics.median(wall[name]), statistics.median(cpu[name])
        print(f"| {name} | {w * 1e3:.0f} | {w / w_base:.2f}x | {c * 1e3:.0f} | {c / c_base:.2f}x |")


if __name__ == "__main__":
    main()
