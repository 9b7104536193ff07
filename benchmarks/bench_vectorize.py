"""Vectorized sweeps against the plain sweep, side by side in one run (issue 14).

1. Wall time of ``overtone sweep`` over 8 small modular-arithmetic runs (2 learning rates x 4
   seeds, MLP, AdamW) run one after another, against the same 8 members trained as one
   ``--vectorize`` pack; both write the same ``sweep.nc``.
2. Why ``vmap(functional_call)``: one training step (forward, backward) of the 8 stacked MLPs
   through ``torch.func.vmap`` against a hand-batched MLP written with ``torch.bmm``.

    python benchmarks/bench_vectorize.py [--steps 300] [--members 8]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

CONFIG = """
[run]
name = "bench"
[task]
name = "modular-arithmetic"
p = 31
train_fraction = 0.5
[model]
name = "mlp"
width = 100
depth = 1
embed_dim = 16
activation = "silu"
[loss]
name = "cross-entropy"
[optimizer]
name = "adamw"
weight_decay = 1.0
[train]
steps = {steps}
batch_size = 128
eval_every = 100
checkpoint_every = {steps}
threads = 1
"""


def sweeps(steps: int, seeds: int) -> tuple[float, float]:
    """Seconds of the plain sweep and of the vectorized one, same grid and seeds."""
    from overtone.registry import registry
    from overtone.sweep import run_sweep

    reg = registry()
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "bench.toml"
        config.write_text(CONFIG.format(steps=steps))
        for vectorize in (False, True):  # warm-up: imports and first-call costs paid by neither
            run_sweep(config, overrides=["train.steps=2", "train.checkpoint_every=2"], registry=reg,
                      out=Path(tmp) / f"warm{vectorize}", vectorize=vectorize)
        for vectorize in (False, True):
            start = time.perf_counter()
            run_sweep(config, grid=["optimizer.lr=0.001,0.003"], seeds=seeds, registry=reg,
                      out=Path(tmp) / str(vectorize), vectorize=vectorize)
            times.append(time.perf_counter() - start)
    return times[0], times[1]


def forward_backward(members: int, repeats: int = 200) -> tuple[float, float]:
    """Seconds per step of vmap(functional_call) and of a bmm-batched MLP, same shapes."""
    import torch
    import torch.nn.functional as F
    from overtone_torch.build import TrainNet
    from overtone_torch.losses.cross_entropy import CrossEntropyLoss
    from overtone_torch.models.mlp import MLP

    torch.set_num_threads(1)
    spec = {"kind": "tokens", "vocab_size": 31, "seq_len": 2, "output": "pooled"}
    nets = [TrainNet(MLP(input_spec=spec, width=100, embed_dim=16, activation="silu"),
                     CrossEntropyLoss(d_in=100, n_classes=31)) for _ in range(members)]
    params, buffers = torch.func.stack_module_state(nets)
    params = {k: v.detach().requires_grad_() for k, v in params.items()}
    template = nets[0].to("meta")
    x = torch.randint(0, 31, (members, 128, 2))
    y = torch.randint(0, 31, (members, 128))
    pack = torch.func.vmap(lambda p, b, xi, yi: torch.func.functional_call(template, (p, b), (xi, yi)))

    def by_vmap() -> None:
        pack(params, buffers, x, y).sum().backward()

    emb, w1, b1 = params["model.token_embedding.weight"], params["model.layers.0.weight"], params["model.layers.0.bias"]
    wh, bh = params["loss.weight"], params["loss.bias"]

    def by_bmm() -> None:
        e = emb[torch.arange(members).view(-1, 1, 1), x].flatten(2)  # (M, B, 2 * 16)
        h = F.silu(torch.baddbmm(b1.unsqueeze(1), e, w1.transpose(1, 2)))
        z = torch.baddbmm(bh.unsqueeze(1), h, wh.transpose(1, 2))
        F.cross_entropy(z.flatten(0, 1), y.flatten(), reduction="none").view(members, -1).mean(1).sum().backward()

    result = []
    for step in (by_vmap, by_bmm):
        for _ in range(10):
            step()
        start = time.perf_counter()
        for _ in range(repeats):
            step()
        result.append((time.perf_counter() - start) / repeats)
    return result[0], result[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--members", type=int, default=8, help="members (2 learning rates x members/2 seeds)")
    args = parser.parse_args()
    os.environ.setdefault("OVERTONE_PROGRESS", "0")
    with open("/proc/loadavg") as f:
        load_before = f.read().split()[:3]
    plain, packed = sweeps(args.steps, args.members // 2)
    vmap_s, bmm_s = forward_backward(args.members)
    with open("/proc/loadavg") as f:
        load_after = f.read().split()[:3]
    print(f"{args.members} runs of {args.steps} steps, modular addition p = 31, MLP width 100, AdamW, 1 thread")
    print("| what | plain sweep | vectorized pack | ratio |")
    print("|---|---|---|---|")
    print(f"| sweep wall time | {plain:.2f} s | {packed:.2f} s | {packed / plain:.2f}x |")
    print(f"| one step, {args.members} members | vmap {vmap_s * 1e3:.2f} ms | bmm {bmm_s * 1e3:.2f} ms | "
          f"vmap/bmm {vmap_s / bmm_s:.2f} |")
    print(f"load average before {' '.join(load_before)}, after {' '.join(load_after)}")


if __name__ == "__main__":
    main()
