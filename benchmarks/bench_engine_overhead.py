"""Per-step overhead of the torch engine against a plain hand-written torch loop.

Both train the same MLP (width 256, embeddings 128) on the same (a + b) mod 97 batches of 512
with the same AdamW, in one process, alternating engine runs and plain blocks so that machine
load hits both alike. Two paths, each against a plain loop doing the same work:

- **fast**: constant learning rate, one parameter group (``[optimizer] decay = "all"``), no
  clipping: the engine skips its scheduler step here, the plain loop has none.
- **realistic**: what the demo and most configs do: a 10-step linear warm-up (the engine steps
  its ``LambdaLR`` every step; the plain loop does too), weight decay on matrices only (two
  parameter groups, the engine's default; the plain loop builds the same two groups) and
  gradient clipping at 1.0 (the engine's default; the plain loop clips too).

Two measurements per path:

- **loop**: milliseconds per step in blocks of ``--block`` steps. The plain loop is timed
  around each block; the engine times itself (its ``examples_per_s`` metric covers the steps
  since the previous evaluation, the evaluation's own time excluded), with ``eval_every =
  block``. This is the per-step cost of the engine's bookkeeping (due checks, loss reads every
  ``log_every`` steps, progress bar, metrics).
- **whole run**: wall time of ``overtone``'s whole run (validation, building, the loop, one
  evaluation per block, the final checkpoint and report.html) against the plain loop's
  steps alone, per step: what a user waits for, fixed costs included.

Goal: loop ratio at most 1.05x on both paths. Prints a markdown table.

    python benchmarks/bench_engine_overhead.py [--block 100] [--blocks 4] [--rounds 3] [--threads 1]
                                               [--paths fast,realistic]
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


WARMUP = 10
#: Per path: [schedule] warmup_steps, [optimizer] decay, [train] grad_clip.
PATHS = {"fast": (0, "all", 0.0), "realistic": (WARMUP, "matrices", 1.0)}


def config(steps: int, block: int, name: str, threads: int, path: str) -> dict:
    warmup, decay, clip = PATHS[path]
    return {
        "run": {"name": name, "seed": 0},
        "task": {"name": "modular-arithmetic", "p": 97, "train_fraction": 0.4},
        "model": {"name": "mlp", "width": 256, "embed_dim": 128},
        "optimizer": {"name": "adamw", "lr": 1e-3, "weight_decay": 1.0, "decay": decay},
        "schedule": {"warmup_steps": warmup},
        "train": {"steps": steps, "batch_size": BATCH, "eval_every": block, "checkpoint_every": 10**9,
                  "grad_clip": clip, "threads": threads},
    }


def engine_run(steps: int, block: int, out: Path, name: str, threads: int, path: str) -> tuple[list[float], float]:
    """(seconds per step in each block but the first, as the engine measured them; whole-run seconds)."""
    from overtone.io import open_dataset
    from overtone.runs import run_config

    start = time.perf_counter()
    run_dir = run_config(config(steps, block, name, threads, path), source="bench", default_name=name, out=out)
    whole = time.perf_counter() - start
    with open_dataset(run_dir / "metrics.nc") as metrics:
        rates = metrics["examples_per_s"].dropna("step").values
    return [BATCH / r for r in rates[1:]], whole


def plain_run(steps: int, block: int, path: str) -> list[float]:
    """Seconds per step in each block but the first: the loop a person would write by hand."""
    from overtone.registry import registry

    warmup, decay, clip = PATHS[path]
    reg = registry()
    torch.manual_seed(0)
    task = reg.get("task", "modular-arithmetic").create(seed=0, p=97, train_fraction=0.4)
    model = reg.get("model", "mlp").create(input_spec=task.input_spec, d_out=256, width=256, embed_dim=128)
    head = torch.nn.Linear(256, 97)
    params = every = list(model.parameters()) + list(head.parameters())
    if decay == "matrices":  # nanoGPT's groups, written out: 2-D weights of linear maps decay
        matrices = [p for m in (model, head) for n, p in m.named_parameters()
                    if p.dim() >= 2 and "embedding" not in n]
        rest = [p for p in params if all(p is not q for q in matrices)]
        params = [{"params": matrices}, {"params": rest, "weight_decay": 0.0}]
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=1.0, foreach=True)
    scheduler = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup)) if warmup else None
    generator = torch.Generator().manual_seed(1)
    per_step = []
    for _ in range(steps // block):
        start = time.perf_counter()
        for _ in range(block):
            x, y = task.sample_batch("train", BATCH, generator)
            loss = torch.nn.functional.cross_entropy(head(model(x)), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(every, clip)
            opt.step()
            if scheduler is not None:
                scheduler.step()
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
    parser.add_argument("--paths", default="fast,realistic", help="comma-separated: fast, realistic")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    steps = args.block * args.blocks
    paths = [p.strip() for p in args.paths.split(",")]
    engine = {p: [] for p in paths}
    plain = {p: [] for p in paths}
    engine_whole = {p: [] for p in paths}
    plain_whole = {p: [] for p in paths}
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        engine_run(args.block, args.block, Path(tmp), "warm-up", args.threads, paths[0])  # imports, caches
        for i in range(args.rounds):
            for path in paths:
                blocks = plain_run(steps, args.block, path)
                plain[path] += blocks
                plain_whole[path].append(statistics.mean(blocks))
                blocks, whole = engine_run(steps, args.block, Path(tmp), f"e{i}-{path}", args.threads, path)
                engine[path] += blocks
                engine_whole[path].append(whole / steps)
    print(f"MLP 256 on (a + b) mod 97, batch {BATCH}, AdamW; {args.rounds} rounds of {args.blocks} blocks x "
          f"{args.block} steps (first block of each run not timed); {torch.get_num_threads()} thread(s); "
          f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after\n")
    print("| path | measurement | plain torch loop (ms/step) | overtone engine (ms/step) | ratio |")
    print("|---|---|---|---|---|")
    met = True
    for path in paths:
        e, p = statistics.median(engine[path]), statistics.median(plain[path])
        ew, pw = statistics.median(engine_whole[path]), statistics.median(plain_whole[path])
        met &= e / p <= 1.05
        print(f"| {path} | loop, median of {len(engine[path])} blocks | {p * 1e3:.2f} | {e * 1e3:.2f} | "
              f"{e / p:.3f}x |")
        print(f"| {path} | whole run incl. setup, evaluations, checkpoint, report | {pw * 1e3:.2f} | "
              f"{ew * 1e3:.2f} | {ew / pw:.2f}x |")
    print(f"\ngoal: loop ratio at most 1.05x on every path -> {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
