"""Optimizer step time on a GPT-2-small-shaped parameter set (124,439,808 float32 parameters).

Compared in one process, interleaved round by round, all with weight decay 0.1 and the same
torch thread count. Baseline: torch.optim.AdamW(fused=True), the strongest peer (one ATen kernel
pass per parameter). Also: AdamW(foreach=True); overtone's FOCUS and Signum with ``fused=True``
(one compiled kernel pass per parameter) and with the foreach path (cut into cache blocks on
CPU); pytorch-optimizer's FOCUS and SignSGD (momentum 0.9, i.e. Signum) with foreach=True, when
that package is installed. Goals: FOCUS fused at most 1.0x fused AdamW's step time, Signum fused
below that.

Each optimizer takes two untimed warm-up steps (state allocation, allocator caches; for the
fused rows the first one compiles, timed and reported separately: with ``--cold`` in a fresh
inductor cache, otherwise it may be a cache load), then ``--rounds`` timed steps, all optimizers
once per round in a new (seeded) order each round, so that none always runs right after the same
one (in a fixed order on a loaded machine, fused AdamW, always first after pytorch-optimizer's
SignSGD, measured 156 ms CPU where interleaved runs of it measured 86-94 ms); the table gives
the median wall time and the median CPU time (process time; with one thread it is the work done,
robust to other processes on a shared machine) and their ratios to fused AdamW. Gradients are
one shared set of tensors. ``--layers``/``--vocab`` shrink the model for a busy machine; with a
CUDA device the same table is measured there too (``--device cuda``).

    python benchmarks/bench_focus.py [--rounds 7] [--threads 1] [--cold] [--layers 12] [--vocab 50257] [--only NAMES]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import tempfile
import time


def gpt2_small_shapes(layers: int = 12, vocab: int = 50257) -> list[tuple[int, ...]]:
    """The parameter shapes of GPT-2 small (tied unembedding): 124,439,808 numbers at 12 layers."""
    d, ctx = 768, 1024
    shapes = [(vocab, d), (ctx, d)]
    for _ in range(layers):
        shapes += [(d,), (d,), (3 * d, d), (3 * d,), (d, d), (d,), (d,), (d,), (4 * d, d), (4 * d,), (d, 4 * d), (d,)]
    return shapes + [(d,), (d,)]


BASE = "torch AdamW (fused)"


def makers() -> dict:
    """Name -> constructor(params) of every optimizer compared."""
    import torch
    from overtone_focus import FOCUS, Signum

    wd = 0.1
    out = {
        BASE: lambda p: torch.optim.AdamW(p, lr=1e-4, weight_decay=wd, fused=True),
        "torch AdamW (foreach)": lambda p: torch.optim.AdamW(p, lr=1e-4, weight_decay=wd, foreach=True),
        "overtone FOCUS (fused)": lambda p: FOCUS(p, lr=1e-4, weight_decay=wd, fused=True),
        "overtone Signum (fused)": lambda p: Signum(p, lr=1e-4, weight_decay=wd, fused=True),
        "overtone FOCUS (foreach, cache blocks)": lambda p: FOCUS(p, lr=1e-4, weight_decay=wd, foreach=True),
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


def measure(device: str, shapes: list[tuple[int, ...]], rounds: int,
            only: list[str] | None = None) -> tuple[dict, dict, dict]:
    """Wall and CPU seconds of ``rounds`` interleaved steps per optimizer, and first-step seconds."""
    import torch

    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    torch.manual_seed(0)
    grads = [torch.randn(s, device=device) * 1e-3 for s in shapes]

    def fresh_params():
        torch.manual_seed(1)
        ps = [torch.nn.Parameter(torch.randn(s, device=device) * 0.02) for s in shapes]
        for p, g in zip(ps, grads):
            p.grad = g
        return ps

    chosen = {name: make for name, make in makers().items()
              if name == BASE or not only or any(word.lower() in name.lower() for word in only)}
    optimizers = {name: make(fresh_params()) for name, make in chosen.items()}
    first: dict[str, float] = {}
    for name, opt in optimizers.items():
        sync()
        w0 = time.perf_counter()
        opt.step()
        sync()
        first[name] = time.perf_counter() - w0
        opt.step()
    wall: dict[str, list[float]] = {name: [] for name in optimizers}
    cpu: dict[str, list[float]] = {name: [] for name in optimizers}
    order, rng = list(optimizers), random.Random(0)
    for _ in range(rounds):
        rng.shuffle(order)  # a new order each round: no optimizer always follows the same one
        for name in order:
            opt = optimizers[name]
            sync()
            c0, w0 = time.process_time(), time.perf_counter()
            opt.step()
            sync()
            wall[name].append(time.perf_counter() - w0)
            cpu[name].append(time.process_time() - c0)
    return wall, cpu, first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--layers", type=int, default=12, help="transformer blocks (12: GPT-2 small)")
    parser.add_argument("--vocab", type=int, default=50257, help="embedding rows (50257: GPT-2)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cpu, and cuda too if present)")
    parser.add_argument("--cold", action="store_true", help="compile in a fresh inductor cache (cold compile time)")
    parser.add_argument("--only", default="", help="comma-separated name parts: only the optimizers whose row name "
                        "contains one (fused AdamW always runs), e.g. --only '(fused)'")
    args = parser.parse_args()
    if args.cold:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench-focus-inductor-")
    import torch

    torch.set_num_threads(args.threads)
    devices = [args.device] if args.device else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    shapes = gpt2_small_shapes(args.layers, args.vocab)
    n = sum(torch.Size(s).numel() for s in shapes)
    for device in devices:
        with open("/proc/loadavg") if os.path.exists("/proc/loadavg") else open(os.devnull) as f:
            load_before = f.read().strip()
        wall, cpu, first = measure(device, shapes, args.rounds, [w for w in args.only.split(",") if w])
        load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
        where = (torch.cuda.get_device_name() if device == "cuda"
                 else f"CPU ({platform.processor() or platform.machine()}), {args.threads} thread(s)")
        print(f"{n:,} parameters ({args.layers} layers, vocab {args.vocab}), float32, {where}, "
              f"torch {torch.__version__}, weight decay 0.1, median of {args.rounds} interleaved steps "
              f"after 2 warm-up steps; load average before: {load_before}; at the end: "
              f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores\n")
        w_base, c_base = statistics.median(wall[BASE]), statistics.median(cpu[BASE])
        print(f"| optimizer ({device}) | wall (ms) | vs fused AdamW | CPU (ms) | vs fused AdamW | first step (s) |")
        print("|---|---|---|---|---|---|")
        for name in wall:
            w, c = statistics.median(wall[name]), statistics.median(cpu[name])
            print(f"| {name} | {w * 1e3:.0f} | {w / w_base:.2f}x | {c * 1e3:.0f} | {c / c_base:.2f}x "
                  f"| {first[name]:.1f} |")
        print()


if __name__ == "__main__":
    main()
