"""Ensembles: 1 to 512 members of the demo-sized MLP as one vectorized pack vs the plain sweep (issue 14).

Modular addition p = 97 with the README demo's model (MLP width 128, depth 1, embed_dim 64,
AdamW), members = seeds. Each case runs in its own process, so that its peak resident memory
(``ru_maxrss``) belongs to it alone; each process first pays imports and first-call costs with a
one-member, two-step sweep, then times ``run_sweep`` (validation, training, evaluation, every
member's files and ``sweep.nc``).

- vectorized: ``--vectorize`` at every size (one pack; ``--pack-memory`` large enough).
- plain: the plain sweep measured at the sizes up to ``--plain-upto`` members, each just before
  the pack of the same size (so that both see about the same load); at larger sizes
  its time is extrapolated linearly per member from the largest measured size (the plain sweep
  runs its members one after another, so its time is a sum over members; stated in the output).

Peak memory per member is ``(peak(N) - peak(1)) / (N - 1)`` of the vectorized process. Reduced
protocol for a loaded 2-core machine: ``--steps`` (default 50) steps of batch ``--batch``
(default 512; the demo trains full-batch, 3764) and one evaluation, at the end.

    python benchmarks/bench_ensemble.py [--sizes 1,8,32,128,512] [--steps 50] [--plain-upto 8]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIG = """
[run]
name = "ens"
seed = 0
[task]
name = "modular-arithmetic"
p = 97
op = "+"
train_fraction = 0.4
[model]
name = "mlp"
width = 128
depth = 1
embed_dim = 64
[loss]
name = "cross-entropy"
[optimizer]
name = "adamw"
lr = 0.01
weight_decay = 1.0
decay = "all"
betas = [0.9, 0.98]
[train]
steps = {steps}
batch_size = {batch}
eval_every = {steps}
checkpoint_every = {steps}
log_every = {steps}
threads = 1
"""


def case(members: int, steps: int, batch: int, vectorize: bool) -> dict[str, float]:
    """Seconds of one sweep of ``members`` seeds and this process's peak resident memory (bytes)."""
    import torch
    from overtone.registry import registry
    from overtone.sweep import run_sweep

    torch.set_num_threads(1)
    reg = registry()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "ens.toml"
        config.write_text(CONFIG.format(steps=steps, batch=batch))
        extra = {"pack_memory": "1TB"} if vectorize else {}
        run_sweep(config, seeds=1, overrides=["train.steps=2", "train.eval_every=2", "train.checkpoint_every=2",
                                              "train.log_every=2"],
                  out=Path(tmp) / "warm", registry=reg, vectorize=vectorize, **extra)
        start = time.perf_counter()
        run_sweep(config, seeds=members, out=Path(tmp) / "run", registry=reg, vectorize=vectorize, **extra)
        wall = time.perf_counter() - start
    return {"wall": wall, "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


def measure(members: int, steps: int, batch: int, vectorize: bool) -> dict[str, float]:
    """:func:`case` in a fresh process."""
    done = subprocess.run([sys.executable, __file__, "--case", str(members), "--steps", str(steps), "--batch",
                           str(batch)] + (["--vectorize"] if vectorize else []),
                          capture_output=True, text=True, check=True, env={**os.environ, "OVERTONE_PROGRESS": "0"})
    return json.loads(done.stdout.strip().splitlines()[-1])


def load() -> str:
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,8,32,128,512")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--plain-upto", type=int, default=8, help="largest size the plain sweep is measured at")
    parser.add_argument("--case", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--vectorize", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(case(args.case, args.steps, args.batch, args.vectorize)))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"modular addition p = 97, MLP 128 (embed 64), AdamW, {args.steps} steps of batch {args.batch}, "
          f"1 thread; load average at start {load()}")
    plain: dict[int, float] = {}
    rows = []
    for n in sizes:  # each size's plain sweep and pack one after the other, so that both see the same load
        if n <= args.plain_upto:
            plain[n] = measure(n, args.steps, args.batch, False)["wall"]
        got = measure(n, args.steps, args.batch, True)
        rows.append((n, got, load()))
    base = max(plain)
    per_member = plain[base] / base
    peak1 = next((g["peak"] for n, g, _ in rows if n == 1), None)
    print("| members | plain sweep (s) | vectorized (s) | ratio | members/s plain | members/s vectorized | "
          "peak RSS (MB) | peak per member (MB) | load |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n, got, load_now in rows:
        measured = n in plain
        t_plain = plain[n] if measured else per_member * n
        mark = "" if measured else f" (extrapolated: {n} x {per_member:.3f})"
        each = f"{(got['peak'] - peak1) / (n - 1) / 1e6:.2f}" if peak1 and n > 1 else "-"
        print(f"| {n} | {t_plain:.2f}{mark} | {got['wall']:.2f} | {got['wall'] / t_plain:.3f}x | "
              f"{n / t_plain:.2f} | {n / got['wall']:.2f} | {got['peak'] / 1e6:.0f} | {each} | {load_now} |")


if __name__ == "__main__":
    main()
