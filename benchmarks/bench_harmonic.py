"""Harmonic vs cross-entropy loss at GPT-2 shape: forward+backward time and peak memory, one run.

d = 768, V = 50,257, N tokens (default 8,192), float32 features and head, on CPU (and on CUDA
when a GPU is present). Variants, each measured in its own subprocess:

- naive cross-entropy: ``F.cross_entropy(x @ W.T, y)``, plain autograd (the peer);
- chunked cross-entropy: overtone-torch's ``cross-entropy`` with ``chunk_size`` (when installed);
- naive harmonic: ``harmonic`` without ``chunk_size`` (autograd over the full logits);
- chunked harmonic: ``harmonic`` with ``chunk_size = --harmonic-chunk`` (never a ``(N, V)`` tensor;
  on CPU one ``(chunk, V)`` block, where chunked cross-entropy holds two, so the default 512 rows
  hold as much as two 256-row blocks);
- on CUDA only (the kernels need a GPU; each row is skipped, with a note, when its package is
  not installed): triton harmonic (``harmonic`` with ``impl = "triton"``, the
  ``overtone-harmonic[triton]`` extra), cut-cross-entropy (``cut_cross_entropy.linear_cross_entropy``,
  the ``cut-cross-entropy`` package) and Liger's fused linear cross-entropy
  (``liger_kernel.transformers.LigerFusedLinearCrossEntropyLoss``, the ``liger-kernel`` package).

Peak memory is what one forward+backward adds on top of the inputs (x, W, y already
allocated): on CPU the rise of the process's resident-set high-water mark (``VmHWM``, reset
through ``/proc/self/clear_refs`` just before the call) over the resident set before it; on
CUDA ``torch.cuda.max_memory_allocated`` over ``memory_allocated`` before it. It includes the
gradients of x and W that the call produces (x: N*d*4 bytes, W: V*d*4 bytes). Each call runs in
a fresh process after a small warm-up call; ``repeats`` rounds each run every variant once, in
turn, so that a change in the machine's load hits all variants alike. Time is the best over the
rounds, wall clock and, on CPU, process CPU time (user + system, less sensitive to other load
on a shared machine); memory the largest. Goals: chunked harmonic
at most 1.0x naive cross-entropy's time and 7% of its peak memory; chunked cross-entropy at
most 1.1x its time. The load average is printed before and after the runs.

``--dtype bfloat16`` runs every variant with bf16 features and head (the GPU kernels' intended
use; the harmonic paths still accumulate distances in float32).

    python benchmarks/bench_harmonic.py [--tokens 8192] [--chunk 256] [--harmonic-chunk 512] [--repeats 3]
        [--threads 2] [--dtype float32] [--variants "naive cross-entropy,chunked harmonic"]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import resource
import subprocess
import sys
import time

VARIANTS = ["naive cross-entropy", "chunked cross-entropy", "naive harmonic", "chunked harmonic",
            "triton harmonic", "cut-cross-entropy", "liger fused linear CE"]
#: Variants that run on CUDA only, and the module each needs.
GPU_ONLY = {"triton harmonic": "triton", "cut-cross-entropy": "cut_cross_entropy",
            "liger fused linear CE": "liger_kernel"}
D, V = 768, 50257


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def build(variant: str, chunk: int, device: str, dtype: str = "float32"):
    """The loss callable ``(x, y) -> scalar`` and its head weight for one variant."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    dt = getattr(torch, dtype)
    if variant in ("naive cross-entropy", "cut-cross-entropy", "liger fused linear CE"):
        w = torch.randn(V, D, device=device).mul_(D**-0.5).to(dt).requires_grad_()
        if variant == "cut-cross-entropy":
            from cut_cross_entropy import linear_cross_entropy

            return (lambda x, y: linear_cross_entropy(x, w, y)), w
        if variant == "liger fused linear CE":
            from liger_kernel.transformers import LigerFusedLinearCrossEntropyLoss

            liger = LigerFusedLinearCrossEntropyLoss()
            return (lambda x, y: liger(w, x, y)), w
        return (lambda x, y: F.cross_entropy(x @ w.T, y)), w
    if variant == "chunked cross-entropy":
        from overtone_torch.losses.cross_entropy import CrossEntropyLoss

        module = CrossEntropyLoss(d_in=D, n_classes=V, bias=False, chunk_size=chunk).to(device, dt)
        return module, module.weight
    from overtone_harmonic.loss import HarmonicLoss

    if variant == "triton harmonic":
        module = HarmonicLoss(d_in=D, n_classes=V, impl="triton")
    else:
        module = HarmonicLoss(d_in=D, n_classes=V, chunk_size=chunk if variant.startswith("chunked") else None)
    module = module.to(device, dt)
    return module, module.weight


def measure(variant: str, tokens: int, chunk: int, device: str, threads: int, dtype: str = "float32") -> dict:
    """Time and peak memory of one forward+backward over ``tokens`` rows, after a warm-up call
    on 256 rows (thread pool and library start-up kept out of the figure; see module doc)."""
    import torch

    torch.set_num_threads(threads)
    loss_fn, w = build(variant, chunk, device, dtype)
    x = torch.randn(tokens, D, device=device, dtype=getattr(torch, dtype), requires_grad=True)
    y = torch.randint(0, V, (tokens,), device=device)
    loss_fn(x[:256].detach().requires_grad_(), y[:256]).backward()
    w.grad = None
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM to the current resident set
        base = _status_kib("VmRSS") * 1024
    wall, cpu = time.perf_counter(), _cpu_seconds()
    loss = loss_fn(x, y)
    loss.backward()
    if device == "cuda":
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter() - wall, _cpu_seconds() - cpu
    peak = (torch.cuda.max_memory_allocated() if device == "cuda" else _status_kib("VmHWM") * 1024) - base
    return {"wall_s": wall, "cpu_s": cpu, "peak_bytes": peak, "loss": float(loss),
            "gx_norm": float(x.grad.norm()), "gw_norm": float(w.grad.norm())}


def analytic_bytes(variant: str, tokens: int, chunk: int, device: str = "cpu") -> int | None:
    """Bytes the variant must hold at its peak, counted by hand (float32): the (N, V) or
    (chunk, V) blocks alive together plus the gradients of x and W (None for the peers' kernels).
    The chunked harmonic head holds one block on CPU (its C++ row loop) and two elsewhere."""
    grads = 4 * (tokens * D + V * D)
    full = 4 * tokens * V
    return {
        "naive cross-entropy": 3 * full + grads,  # logits, log-softmax (saved), its gradient
        "chunked cross-entropy": 2 * 4 * chunk * V + grads,
        "naive harmonic": 5 * full + grads,  # d^2 + |x|^2, clamp, log (saved), log-softmax, gradient
        "chunked harmonic": (1 if device == "cpu" else 2) * 4 * chunk * V + grads,  # W's gradient built in place
        "triton harmonic": 2 * grads,  # float32 D W and D^T X buffers, then the gradients
    }.get(variant)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=8192)
    parser.add_argument("--chunk", type=int, default=256)
    parser.add_argument("--harmonic-chunk", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--device", default="cpu", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.tokens, args.chunk, args.device, args.threads, args.dtype)))
        return
    import torch

    requested = [v for v in args.variants.split(",") if v]

    def chunk_of(variant: str) -> int:
        return args.harmonic_chunk if variant == "chunked harmonic" else args.chunk

    needs = {"chunked cross-entropy": "overtone_torch", **GPU_ONLY}
    missing = [v for v in requested if v in needs and importlib.util.find_spec(needs[v]) is None]
    for variant in missing:
        print(f"# {variant}: skipped ({needs[variant]} is not installed)", file=sys.stderr)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        variants = [v for v in requested if v not in missing and (device == "cuda" or v not in GPU_ONLY)]
        load_before = os.getloadavg()[0]
        runs = {variant: [] for variant in variants}
        for _ in range(args.repeats):  # rounds interleave the variants: load drift hits all alike
            for variant in variants:
                out = subprocess.run([sys.executable, __file__, "--child", variant, "--tokens", str(args.tokens),
                                      "--chunk", str(chunk_of(variant)), "--threads", str(args.threads),
                                      "--device", device, "--dtype", args.dtype], capture_output=True, text=True)
                if out.returncode:
                    raise SystemExit(f"{variant} on {device} failed:\n{out.stderr}")
                runs[variant].append(json.loads(out.stdout.strip().splitlines()[-1]))
                print(f"# {variant}: {runs[variant][-1]}", file=sys.stderr, flush=True)
        results = {variant: {**r[0], "wall_s": min(x["wall_s"] for x in r), "cpu_s": min(x["cpu_s"] for x in r),
                             "peak_bytes": max(x["peak_bytes"] for x in r)} for variant, r in runs.items()}
        base = results["naive cross-entropy"]
        name = torch.cuda.get_device_name() if device == "cuda" else f"{platform.processor() or 'CPU'}, " \
            f"{args.threads} threads, load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
        print(f"\n{device} ({name}): d = {D}, V = {V:,}, {args.tokens:,} tokens, chunk {args.chunk} "
              f"(chunked harmonic {args.harmonic_chunk}), {args.dtype}, "
              f"best of {args.repeats} interleaved rounds of one forward+backward, torch {torch.__version__}\n")
        cpu_cols = " CPU time (s) | vs naive CE |" if device == "cpu" else ""
        print(f"| loss | wall time (s) | vs naive CE |{cpu_cols} peak memory (MiB) | vs naive CE | analytic (MiB) |")
        print("|---|---|---|" + ("---|---|" if device == "cpu" else "") + "---|---|---|")
        for variant, r in results.items():
            cpu = f" {r['cpu_s']:.1f} | {r['cpu_s'] / base['cpu_s']:.2f}x |" if device == "cpu" else ""
            analytic = analytic_bytes(variant, args.tokens, chunk_of(variant), device)
            print(f"| {variant} | {r['wall_s']:.3g} | {r['wall_s'] / base['wall_s']:.2f}x |{cpu} "
                  f"{r['peak_bytes'] / 2**20:,.0f} | {r['peak_bytes'] / base['peak_bytes']:.1%} | "
                  f"{'-' if analytic is None else format(analytic / 2**20, ',.0f')} |")
    if len(devices) == 1:
        print(f"\nno CUDA device here: GPU rows ({', '.join(GPU_ONLY)}) not measured")


if __name__ == "__main__":
    main()
