"""Per-step overhead of the torch engine against a plain hand-written torch loop.

Both train the same MLP (width 256, embeddings 128) on the same (a + b) mod 97 batches of 512
with the same AdamW, in one process, alternating engine runs and plain blocks so that machine
load hits both alike. Two measurements:

- **loop**: milliseconds per step in blocks of ``--block`` steps. The plain loop is timed
  around each block; the engine times itself (its ``examples_per_s`` metric covers the steps
  since the previous evaluation, the evaluation's own time excluded), with ``eval_every =
  block``. This is the per-step cost of the engine's bookkeeping (scheduler, loss reads every
  ``log_every`` steps, progress bar, metrics).
- **whole run**: wall time of ``overtone``'s whole run (validation, building, the loop, one
  evaluation per block, the final checkpoint and report.html) against the plain loop's
  steps alone, per step: what a user waits for, fixed costs included.

Goal: loop ratio at most 1.05x. Prints a markdown table.

    python benchmarks/bench_engine_overhead.py [--block 100] [--blocks 4] [--rounds 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

os.environ.setdefault("OVERTONE_PROGRESS", "0")
BATCH = 512


def config(steps: int, block: int, name: str, threads: int) -> dict:
    return {
        "run": {"name": name, "seed": 0},
        "task": {"name": "modular-arithmetic", "p": 97, "train_fraction": 0.4},
        "model": {"name": "mlp", "width": 256, "embed_dim": 128},
        "optimizer": {"name": "adamw", "lr": 1e-3, "weight_decay": 1.0},
        "train": {"steps": steps, "batch_size": BATCH, "eval_every": block, "checkpoint_every": 10**9,
                  "grad_clip": 0.0, "threads": threads},
    }


def engine_run(steps: int, block: int, out: Path, name: str, threads: int) -> tuple[list[float], float]:
    """(seconds per step in each block but the first, as the engine measured them; whole-run seconds)."""
    from overtone.io import open_dataset
    from overtone.runs import run_config

    start = time.perf_counter()
    run_dir = run_config(config(steps, block, name, threads), source="bench", default_name=name, out=out)
    whole = time.perf_counter() - start
    with open_dataset(run_dir / "metrics.nc") as metrics:
        rates = metrics["examples_per_s"].dropna("step").values
    return [BATCH / r for r in rates[1:]], whole


def plain_run(steps: int, block: int) -> list[float]:
    """Seconds per step in each block but the first: the loop a person would write by hand."""
    from overtone.registry import registry

    reg = registry()
    torch.manual_seed(0)
    task = reg.get("task", "modular-arithmetic").create(seed=0, p=97, train_fraction=0.4)
    model = reg.get("model", "mlp").create(input_spec=task.input_spec, d_out=256, width=256, embed_dim=128)
    head = torch.nn.Linear(256, 97)
    params = list(model.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=1.0, foreach=True)
    generator = torch.Generator().manual_seed(1)
    per_step = []
    for _ in range(steps // block):
        start = time.perf_counter()
        for _ in range(block):
            x, y = task.sample_batch("train", BATCH, generator)
            loss = torch.nn.functional.cross_entropy(head(model(x)), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss.item()
        per_step.append((time.perf_counter() - start) / block)
    return per_step[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--block", type=int, default=100, help="steps per timed block")
    parser.add_argument("--blocks", type=int, default=4, help="blocks per run (the first is warm-up)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads for both (1 is steadiest on a shared machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    steps = args.block * args.blocks
    engine, plain, engine_whole, plain_whole = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        engine_run(args.block, args.block, Path(tmp), "warm-up", args.threads)  # imports, caches
        for i in range(args.rounds):
            blocks = plain_run(steps, args.block)
            plain += blocks
            plain_whole.append(statistics.mean(blocks))
            blocks, whole = engine_run(steps, args.block, Path(tmp), f"e{i}", args.threads)
            engine += blocks
            engine_whole.append(whole / steps)
    e, p = statistics.median(engine), statistics.median(plain)
    ew, pw = statistics.median(engine_whole), statistics.median(plain_whole)
    print(f"MLP 256 on (a + b) mod 97, batch {BATCH}, AdamW; {args.rounds} rounds of {args.blocks} blocks x "
          f"{args.block} steps (first block of each run not timed); {torch.get_num_threads()} thread(s)\n")
    print("| measurement | plain torch loop (ms/step) | overtone engine (ms/step) | ratio |")
    print("|---|---|---|---|")
    print(f"| loop, median of {len(engine)} blocks | {p * 1e3:.2f} | {e * 1e3:.2f} | {e / p:.3f}x |")
    print(f"| whole run incl. setup, evaluations, checkpoint, report | {pw * 1e3:.2f} | {ew * 1e3:.2f} | "
          f"{ew / pw:.2f}x |")
    print(f"\ngoal: loop ratio at most 1.05x -> {'met' if e / p <= 1.05 else 'NOT met'}")


if __name__ == "__main__":
    main()
