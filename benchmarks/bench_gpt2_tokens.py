"""GPT-2 small training throughput (tokens/s, bf16) of the torch engine against a minimal loop.

Both train the same 124M-parameter transformer (``preset = "gpt2-small"``, tied head) on the
bundled character corpus with AdamW, in bf16 autocast, in one process, alternating blocks.
The engine's figure comes from its own ``tokens_per_s`` metric (time between evaluations,
their time excluded); the minimal loop times the same number of steps after a warm-up.
Needs CUDA: without it the script says so and exits 0.

    python benchmarks/bench_gpt2_tokens.py [--steps 50] [--batch 8] [--context 1024] [--compile]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OVERTONE_PROGRESS", "0")


def config(args: argparse.Namespace, name: str) -> dict:
    return {
        "run": {"name": name, "seed": 0},
        "task": {"name": "char-text", "context": args.context},
        "model": {"name": "transformer", "preset": "gpt2-small", "tie_weights": True},
        "loss": {"name": "cross-entropy"},
        "optimizer": {"name": "adamw", "lr": 3e-4, "weight_decay": 0.1, "betas": [0.9, 0.95]},
        "train": {"steps": args.warmup + args.steps, "batch_size": args.batch, "eval_every": args.warmup,
                  "checkpoint_every": 10**9, "log_every": 10, "grad_clip": 1.0, "device": "cuda",
                  "compile": args.compile, "eval_batch_size": args.batch},
    }


def engine_tokens_per_s(args: argparse.Namespace, out: Path, i: int) -> float:
    """The engine's own tokens_per_s over the steps after the first evaluation (warm-up excluded)."""
    from overtone.io import open_dataset
    from overtone.runs import run_config

    run_dir = run_config(config(args, f"gpt2-{i}"), source="bench", default_name="gpt2", out=out)
    with open_dataset(run_dir / "metrics.nc") as metrics:
        return float(metrics["tokens_per_s"].dropna("step")[-1])


def plain_tokens_per_s(args: argparse.Namespace) -> float:
    """A minimal loop: same model, data, optimizer, autocast and clipping; no bookkeeping."""
    import torch
    from overtone.registry import registry

    reg = registry()
    task = reg.get("task", "char-text").create(seed=0, context=args.context)
    torch.manual_seed(0)
    model = reg.get("model", "transformer").create(input_spec=task.input_spec, d_out=768, preset="gpt2-small",
                                                   tie_weights=True).cuda()
    head = reg.get("loss", "cross-entropy").create(d_in=768, n_classes=task.n_classes).cuda()
    head.weight = model.token_embedding.weight
    params = list(dict.fromkeys([*model.parameters(), *head.parameters()]))
    opt = torch.optim.AdamW(params, lr=3e-4, weight_decay=0.1, betas=(0.9, 0.95), fused=True)
    forward = torch.compile(model) if args.compile else model
    generator = torch.Generator().manual_seed(1)

    def step() -> None:
        x, y = task.sample_batch("train", args.batch, generator)
        x, y = x.cuda(non_blocking=True), y.cuda(non_blocking=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = head(forward(x), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(args.warmup):
        step()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    torch.cuda.synchronize()
    return args.steps * args.batch * args.context / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--context", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("bench_gpt2_tokens: no CUDA device here; this benchmark needs a GPU (nothing measured)")
        return
    engine, plain = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.rounds):
            plain.append(plain_tokens_per_s(args))
            engine.append(engine_tokens_per_s(args, Path(tmp), i))
    e, p = statistics.median(engine), statistics.median(plain)
    print(f"GPT-2 small (124M), bf16 autocast, batch {args.batch} x {args.context} tokens, "
          f"{args.steps} timed steps x {args.rounds} rounds, compile={args.compile}, "
          f"{torch.cuda.get_device_name()}\n")
    print("| loop | tokens/s (median of rounds) | ratio to minimal loop |")
    print("|---|---|---|")
    print(f"| minimal torch loop | {p:,.0f} | 1.00x |")
    print(f"| overtone torch engine | {e:,.0f} | {e / p:.2f}x |")


if __name__ == "__main__":
    main()
