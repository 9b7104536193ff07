"""Data parallelism: torchrun with 2 CPU processes (gloo) follows the 1-process loss curve."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import torch
from overtone.io import open_dataset
from overtone.runs import run_experiment
from torch_engine_testing import small, write


def test_ddp_two_processes_match_one(tmp_path, registry):
    # dropout-free model: the only difference is how the global batch's gradient is summed
    config = small(train={"steps": 12, "eval_every": 6, "checkpoint_every": 6, "batch_size": 64},
                   probes=[{"kind": "embeddings", "every": 6}])
    path = write(tmp_path, config)
    single = run_experiment(path, out=tmp_path / "one", registry=registry)
    env = {**os.environ, "OVERTONE_PROGRESS": "0", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "overtone", "run", str(path), "--out", str(tmp_path / "two")],
        capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    double = tmp_path / "two" / "small"
    # Each rank takes half of the same global batch; DDP averages the two half-batch gradients,
    # which equals the full-batch gradient up to float32 summation order. Tolerance: 1e-4 relative
    # on the losses over 12 AdamW steps (observed differences are ~1e-6).
    with open_dataset(single / "metrics.nc") as a, open_dataset(double / "metrics.nc") as b:
        assert a.step.values.tolist() == b.step.values.tolist()
        for name in ("train_batch_loss", "train_loss", "eval_loss"):
            np.testing.assert_allclose(a[name].dropna("step").values, b[name].dropna("step").values,
                                       rtol=1e-4, err_msg=name)
        assert b.attrs["run_name"] == "small"
    state_1 = torch.load(single / "checkpoint.pt", weights_only=False)
    state_2 = torch.load(double / "checkpoint.pt", weights_only=False)
    assert state_2["world_size"] == 2 and state_2["step"] == 12
    for key, value in state_1["net"].items():
        torch.testing.assert_close(state_2["net"][key], value, rtol=1e-3, atol=1e-5)
    # only rank 0 wrote: one set of files, complete
    assert sorted(p.name for p in double.iterdir()) == ["checkpoint.pt", "config.toml", "metrics.nc",
                                                         "probes.nc", "report.html"]


def test_ddp_with_accumulation_matches_one_process(tmp_path, registry):
    """2 processes x 2 micro-batches of 32 (no_sync on the first) take the steps of one process at 64."""
    steps = {"steps": 6, "eval_every": 6, "checkpoint_every": 6}
    single = run_experiment(write(tmp_path, small(train={**steps, "batch_size": 64}, probes=[]), "one.toml"),
                            out=tmp_path / "one", registry=registry)
    path = write(tmp_path, small(train={**steps, "batch_size": 32, "accumulate": 2}, probes=[]), "two.toml")
    env = {**os.environ, "OVERTONE_PROGRESS": "0", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "overtone", "run", str(path), "--out", str(tmp_path / "two")],
        capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    # same data per step (the step's 64 examples drawn at once); float32 summation order differs
    with open_dataset(single / "metrics.nc") as a, open_dataset(tmp_path / "two" / "small" / "metrics.nc") as b:
        for name in ("train_batch_loss", "eval_loss"):
            np.testing.assert_allclose(b[name].dropna("step").values, a[name].dropna("step").values,
                                       rtol=1e-4, err_msg=name)
    state_1 = torch.load(single / "checkpoint.pt", weights_only=False)["net"]
    state_2 = torch.load(tmp_path / "two" / "small" / "checkpoint.pt", weights_only=False)["net"]
    for key, value in state_1.items():
        torch.testing.assert_close(state_2[key], value, rtol=1e-3, atol=1e-5)
