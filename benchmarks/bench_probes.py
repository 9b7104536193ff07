"""Streaming probes: memory flat in the number of probe steps, and what a probe step costs.

The model is the grokking MLP (width 256, embeddings 128) on (a + b) mod 97, trained with
AdamW on batches of 512. At every step it records an embeddings probe (97 x 128) and a hidden
probe (256 samples x 256 features), about 310 kB a step. Each configuration runs in its own
process, interleaving training steps and probe steps:

- **streaming**: ``ProbeRecorder.record``, each step appended to probes.nc as it is taken
  (``overtone.io.append_step``).
- **in memory** (the peer, how the recorder worked before): every snapshot kept in a list,
  joined with ``xr.concat`` and written with ``write_dataset`` at the end (uncompressed here;
  the old recorder also zlib-compressed, which costs more).
- **zarr** (the other format considered): the same snapshots appended with xarray's
  ``to_zarr(append_dim="step")``, uncompressed as probes.nc is.

Printed per configuration and number of steps (10, 100, 1000): peak traced memory
(tracemalloc: NumPy and Python allocations, torch's own excluded), the process's VmHWM, the
mean milliseconds of a probe step and of a training step (the first step, which creates the
file, left out; the in-memory peer's final concat and write counted in its last step), their
ratio, and the mean probe time of the first and of the last 10 steps (flat when nothing grows).

    python benchmarks/bench_probes.py [--steps 10 100 1000] [--zarr-steps 10 100] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

PROBES = [{"kind": "embeddings", "every": 1}, {"kind": "hidden", "every": 1, "samples": 256}]
BATCH = 512


def vm_hwm_mb() -> float:
    """The process's peak resident memory in MB (Linux /proc; NaN elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def one(mode: str, steps: int, threads: int) -> dict:
    """Train ``steps`` steps with a probe step after each; measure memory and times."""
    import torch
    import xarray as xr
    from overtone.io import write_dataset
    from overtone.registry import registry
    from overtone_torch.build import TrainNet
    from overtone_torch.probes import ProbeRecorder

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    reg = registry()
    task = reg.get("task", "modular-arithmetic").create(seed=0, p=97, train_fraction=0.4)
    model = reg.get("model", "mlp").create(input_spec=task.input_spec, d_out=256, width=256, embed_dim=128)
    net = TrainNet(model, reg.get("loss", "cross-entropy").create(d_in=256, n_classes=97))
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1.0, foreach=True)
    generator = torch.Generator().manual_seed(1)
    work = Path(tempfile.mkdtemp(prefix="bench-probes-"))
    recorder = ProbeRecorder(PROBES, task, work if mode == "streaming" else None, total_steps=steps,
                             batch_size=BATCH)
    snapshots: list[xr.Dataset] = []
    train_s, probe_s = [], []
    tracemalloc.start()
    for step in range(1, steps + 1):
        start = time.perf_counter()
        x, y = task.sample_batch("train", BATCH, generator)
        loss = net(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        middle = time.perf_counter()
        if mode == "streaming":
            recorder.record(step, net)
        elif mode == "memory":
            snapshots.append(recorder.snapshot(step, net))
        else:  # zarr
            snapshot = recorder.snapshot(step, net)
            if step == 1:  # uncompressed, as probes.nc is
                snapshot.to_zarr(work / "probes.zarr", mode="w", consolidated=False,
                                 encoding={n: {"compressors": None} for n in snapshot.data_vars})
            else:
                snapshot.drop_vars(["labels", "token_label"]).to_zarr(
                    work / "probes.zarr", append_dim="step", consolidated=False)
        probe_s.append(time.perf_counter() - middle)
        train_s.append(middle - start)
    if mode == "memory":
        start = time.perf_counter()
        fixed = ["labels", "token_label"]
        data = xr.concat([s.drop_vars(fixed) for s in snapshots], "step")
        data = data.assign(labels=snapshots[0]["labels"]).assign_coords(token_label=snapshots[0]["token_label"])
        write_dataset(data, work / "probes.nc")
        probe_s[-1] += time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    files = [p for p in work.rglob("*") if p.is_file()]
    probe_s, train_s = probe_s[1:], train_s[1:]  # the first step creates the file (and imports)
    return {"mode": mode, "steps": steps, "peak_mb": peak, "hwm_mb": vm_hwm_mb(),
            "probe_ms": 1e3 * sum(probe_s) / len(probe_s), "train_ms": 1e3 * sum(train_s) / len(train_s),
            "first10_ms": 1e3 * sum(probe_s[:10]) / len(probe_s[:10]),
            "last10_ms": 1e3 * sum(probe_s[-10:]) / len(probe_s[-10:]),
            "disk_mb": sum(p.stat().st_size for p in files) / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--modes", nargs="+", default=["streaming", "memory", "zarr"])
    parser.add_argument("--zarr-steps", type=int, nargs="+", default=[10, 100],
                        help="steps for the zarr peer (its per-step cost; 1000 takes minutes)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one[0], int(args.one[1]), args.threads)))
        return
    env = {**os.environ, "OVERTONE_PROGRESS": "0"}
    print(f"load before: {Path('/proc/loadavg').read_text().strip()}" if Path("/proc/loadavg").exists() else "")
    print("| probes | steps | peak traced MB | VmHWM MB | probe ms/step | train ms/step | probe/train "
          "| first 10 / last 10 ms | disk MB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for mode in args.modes:
        for steps in args.zarr_steps if mode == "zarr" else args.steps:
            out = subprocess.run([sys.executable, __file__, "--one", mode, str(steps), "--threads",
                                  str(args.threads)], capture_output=True, text=True, env=env, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"| {mode} | {steps} | {r['peak_mb']:.1f} | {r['hwm_mb']:.0f} | {r['probe_ms']:.2f} | "
                  f"{r['train_ms']:.2f} | {r['probe_ms'] / r['train_ms']:.2f}x | "
                  f"{r['first10_ms']:.2f} / {r['last10_ms']:.2f} | {r['disk_mb']:.1f} |", flush=True)
    print(f"load after: {Path('/proc/loadavg').read_text().strip()}" if Path("/proc/loadavg").exists() else "")


if __name__ == "__main__":
    main()
