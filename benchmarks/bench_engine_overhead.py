"""Per-step overhead of the torch engine against a plain hand-written torch loop.

Both train the same MLP on the same modular-arithmetic batches with the same AdamW, in one
process, alternating blocks so machine load hits both alike. The engine runs with evaluation,
probes and checkpoints far apart (their cost is reported separately by the run itself), so
the ratio measures the loop's own bookkeeping. Goal: at most 1.05x.

    python benchmarks/bench_engine_overhead.py [--steps 300] [--rounds 3]
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


def config(steps: int, name: str) -> dict:
    return {
        "run": {"name": name, "seed": 0},
        "task": {"name": "modular-arithmetic", "p": 97, "train_fraction": 0.4},
        "model": {"name": "mlp", "width": 256, "embed_dim": 128},
        "optimizer": {"name": "adamw", "lr": 1e-3, "weight_decay": 1.0},
        "train": {"steps": steps, "batch_size": 512, "eval_every": 10**6, "checkpoint_every": 10**6,
                  "grad_clip": 0.0, "threads": 2},
    }


def engine_seconds(steps: int, out: Path, i: int) -> float:
    """Seconds per step: (whole run of ``steps`` - whole run of 1 step) / (steps - 1).

    Subtracting the 1-step run removes the fixed cost (validation, building, the final
    evaluation and the report) and leaves the loop's per-step cost.
    """
    from overtone.runs import run_config

    def whole(n: int, name: str) -> float:
        start = time.perf_counter()
        run_config(config(n, name), source="bench", default_name=name, out=out)
        return time.perf_counter() - start

    return (whole(steps, f"e{i}") - whole(1, f"s{i}")) / (steps - 1)


def plain_seconds(steps: int) -> float:
    from overtone.registry import registry

    reg = registry()
    torch.manual_seed(0)
    task = reg.get("task", "modular-arithmetic").create(seed=0, p=97, train_fraction=0.4)
    model = reg.get("model", "mlp").create(input_spec=task.input_spec, d_out=256, width=256, embed_dim=128)
    head = torch.nn.Linear(256, 97)
    params = list(model.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=1.0, foreach=True)
    generator = torch.Generator().manual_seed(1)
    start = time.perf_counter()
    for _ in range(steps):
        x, y = task.sample_batch("train", 512, generator)
        loss = torch.nn.functional.cross_entropy(head(model(x)), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss.item()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(2)
    engine, plain = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.rounds):
            plain.append(plain_seconds(args.steps))
            engine.append(engine_seconds(args.steps, Path(tmp), i))
    e, p = statistics.median(engine), statistics.median(plain)
    print(f"MLP 256 on (a + b) mod 97, batch 512, AdamW, {args.steps} steps x {args.rounds} rounds, "
          f"{torch.get_num_threads()} threads\n")
    print("| loop | ms per step (median of rounds) | ratio |")
    print("|---|---|---|")
    print(f"| plain torch loop | {p * 1e3:.2f} | 1.00x |")
    print(f"| overtone torch engine | {e * 1e3:.2f} | {e / p:.2f}x |")
    print(f"\ngoal: at most 1.05x -> {'met' if e / p <= 1.05 else 'NOT met'}")


if __name__ == "__main__":
    main()
