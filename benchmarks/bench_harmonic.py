"""Harmonic vs cross-entropy loss at GPT-2 shape: forward+backward time and peak memory.

d = 768, V = 50,257, N tokens (default 8,192), float32, on CPU (and CUDA when present).
Variants: naive cross-entropy (full logits), chunked cross-entropy, naive harmonic, chunked
harmonic. Each variant runs in its own subprocess; peak memory is the rise of the process's
peak resident set (ru_maxrss) over its level after the inputs were allocated, i.e. what the loss
itself needed (on CUDA: torch.cuda.max_memory_allocated over the same baseline). Goals: chunked
harmonic peak at most 10% of naive cross-entropy's, time at most 1.3x naive cross-entropy's.

    python benchmarks/bench_harmonic.py [--tokens 8192] [--chunk 1024] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

VARIANTS = ["naive cross-entropy", "chunked cross-entropy", "naive harmonic", "chunked harmonic"]


def measure(variant: str, tokens: int, chunk: int, repeats: int, device: str) -> dict:
    import torch
    from overtone_harmonic.loss import HarmonicLoss
    from overtone_torch.losses.cross_entropy import CrossEntropyLoss

    torch.set_num_threads(2)
    torch.manual_seed(0)
    d, v = 768, 50257
    chunk_size = chunk if variant.startswith("chunked") else None
    if "harmonic" in variant:
        loss_fn = HarmonicLoss(d_in=d, n_classes=v, chunk_size=chunk_size)
    else:
        loss_fn = CrossEntropyLoss(d_in=d, n_classes=v, bias=False, chunk_size=chunk_size)
    loss_fn = loss_fn.to(device)
    x = torch.randn(tokens, d, device=device, requires_grad=True)
    y = torch.randint(0, v, (tokens,), device=device)
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    times = []
    for _ in range(repeats):
        x.grad = None
        loss_fn.weight.grad = None
        start = time.perf_counter()
        loss_fn(x, y).backward()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    return {"seconds": min(times), "peak_bytes": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=8192)
    parser.add_argument("--chunk", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.tokens, args.chunk, args.repeats, args.device)))
        return
    import torch

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        results = {}
        for variant in VARIANTS:
            out = subprocess.run([sys.executable, __file__, "--child", variant, "--tokens", str(args.tokens),
                                  "--chunk", str(args.chunk), "--repeats", str(args.repeats), "--device", device],
                                 capture_output=True, text=True, check=True)
            results[variant] = json.loads(out.stdout.strip().splitlines()[-1])
        base = results["naive cross-entropy"]
        print(f"\n{device}: d=768, V=50,257, {args.tokens:,} tokens, chunk {args.chunk}, float32, "
              f"best of {args.repeats} forward+backward\n")
        print("| loss | time (s) | vs naive CE | peak loss memory (MiB) | vs naive CE |")
        print("|---|---|---|---|---|")
        for variant, r in results.items():
            print(f"| {variant} | {r['seconds']:.2f} | {r['seconds'] / base['seconds']:.2f}x | "
                  f"{r['peak_bytes'] / 2**20:.0f} | {r['peak_bytes'] / base['peak_bytes']:.1%} |")
    if len(devices) == 1:
        print("\nno CUDA device here: GPU rows not measured")


if __name__ == "__main__":
    main()
