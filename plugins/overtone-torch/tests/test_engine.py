"""The torch engine end to end: resume, NaN stop, validation, probes, report, DDP."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from overtone import ConfigError
from overtone.config import dump_toml
from overtone.io import open_dataset, read_groups
from overtone.runs import run_experiment

SMALL = {
    "run": {"name": "small", "seed": 5},
    "task": {"name": "modular-arithmetic", "p": 23, "train_fraction": 0.5},
    "model": {"name": "mlp", "width": 32, "embed_dim": 16},
    "optimizer": {"name": "adamw", "lr": 0.01, "weight_decay": 0.1},
    "schedule": {"warmup_steps": 3, "decay": "cosine"},
    "train": {"steps": 30, "batch_size": 64, "eval_every": 5, "checkpoint_every": 10, "threads": 1},
    "probes": [{"kind": "embeddings", "every": 10}, {"kind": "hidden", "every": 15, "samples": 20},
               {"kind": "outputs", "every": 30}, {"kind": "weights", "every": 30, "names": ["model.layers.0.weight"]}],
}


def write(tmp_path: Path, config: dict, name: str = "exp.toml") -> Path:
    path = tmp_path / name
    path.write_text(dump_toml(config))
    return path


def test_resume_continues_bit_for_bit(tmp_path, registry, monkeypatch):
    config = write(tmp_path, SMALL)
    straight = run_experiment(config, out=tmp_path / "a", registry=registry)

    from overtone_torch.tasks.modular import ModularArithmetic

    calls = {"n": 0}
    original = ModularArithmetic.sample_batch

    def interrupt_at_step_24(self, split, batch_size, generator):
        calls["n"] += 1
        if calls["n"] == 25:
            raise KeyboardInterrupt
        return original(self, split, batch_size, generator)

    monkeypatch.setattr(ModularArithmetic, "sample_batch", interrupt_at_step_24)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(config, out=tmp_path / "b", registry=registry)
    monkeypatch.setattr(ModularArithmetic, "sample_batch", original)
    interrupted = tmp_path / "b" / "small"
    assert torch.load(interrupted / "checkpoint.pt", weights_only=False)["step"] == 20
    resumed = run_experiment(config, out=tmp_path / "b", resume=True, registry=registry)

    with open_dataset(straight / "metrics.nc") as a, open_dataset(resumed / "metrics.nc") as b:
        for name in ("train_batch_loss", "eval_loss", "eval_acc", "lr"):
            np.testing.assert_array_equal(a[name].values, b[name].values)
    state_a = torch.load(straight / "checkpoint.pt", weights_only=False)["net"]
    state_b = torch.load(resumed / "checkpoint.pt", weights_only=False)["net"]
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    with open_dataset(straight / "probes.nc") as pa, open_dataset(resumed / "probes.nc") as pb:
        assert pa.step.values.tolist() == pb.step.values.tolist() == [10, 15, 20, 30]
        np.testing.assert_array_equal(pa["embeddings"].values, pb["embeddings"].values)


def test_probes_and_report(tmp_path, registry):
    config = {**SMALL, "analyzers": [{"name": "pca-structure", "every": 10, "variable": "embeddings"}]}
    run_dir = run_experiment(write(tmp_path, config), out=tmp_path, registry=registry)
    with open_dataset(run_dir / "probes.nc") as probes:
        assert probes["embeddings"].dims == ("step", "token", "embed_dim")
        assert probes["hidden"].sizes["sample"] == 20 and probes["labels"].dims == ("sample",)
        outputs = probes["outputs"].sel(step=30).values
        assert outputs.shape == (23, 23, 23)
        np.testing.assert_allclose(outputs.sum(-1), 1.0, rtol=1e-5)
        assert probes.attrs["p"] == 23 and probes["weight_model_layers_0_weight"].dims[1:] == ("out", "in")
    with open_dataset(run_dir / "metrics.nc") as metrics:
        eval_steps = metrics["eval_acc"].dropna("step").step.values.tolist()
        assert eval_steps == [5, 10, 15, 20, 25, 30]
        assert metrics["lr"].sel(step=1) == pytest.approx(0.01 * 2 / 3)  # warm-up: after step 1 of 3
    assert "pca-structure" in read_groups(run_dir / "analysis.nc")
    html = (run_dir / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 2 and "Analyzer: pca-structure" in html


def test_nan_stops_and_keeps_data(tmp_path, registry):
    config = {**SMALL, "optimizer": {"name": "sgd", "lr": 1e12},
              "train": {**SMALL["train"], "checkpoint_every": 1, "grad_clip": 0.0}}
    from overtone_torch.engine import TrainingDiverged

    with pytest.raises(TrainingDiverged, match=r"step \d+: the training loss is (nan|inf); stopped"):
        run_experiment(write(tmp_path, config), out=tmp_path, registry=registry)
    run_dir = tmp_path / "small"
    state = torch.load(run_dir / "checkpoint.pt", weights_only=False)
    assert all(torch.isfinite(v).all() for v in state["net"].values())
    with open_dataset(run_dir / "metrics.nc") as metrics:
        assert metrics.sizes["step"] >= state["step"] >= 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"task": {"name": "modular"}}, "[task]: no task named 'modular'; installed: "),
        ({"model": {"name": "cnn"}}, "[model]: no model named 'cnn'"),
        ({"loss": {"name": "harmnic"}}, "[loss]: no loss named 'harmnic'"),
        ({"train": {"steps": "100"}}, "[train]: steps = '100' has type str; expected int"),
        ({"train": {"batch_size": 1000}}, "[train] batch_size = 1000 is larger than the training set (264 examples"),
        ({"trainer": {}}, "unknown section [trainer]"),
        ({"model": {"name": "mlp", "widht": 3}}, "unknown key 'widht'"),
        ({"task": {"name": "modular-arithmetic", "p": 24}}, "[task] p = 24 must be a prime"),
        ({"probes": [{"kind": "attention"}]}, "[[probes]] #1: kind = 'attention' is not allowed"),
        ({"analyzers": [{"name": "pca"}]}, "[[analyzers]] #1: no analyzer named 'pca'"),
        ({"model": {"name": "transformer", "d_model": 30, "n_head": 4}}, "d_model = 30 must be divisible by n_head = 4"),
    ],
)
def test_bad_configs_fail_before_training(tmp_path, registry, change, message):
    config = write(tmp_path, {**SMALL, **change})
    with pytest.raises(ConfigError) as info:
        run_experiment(config, out=tmp_path / "runs", registry=registry)
    assert message in str(info.value) and "exp.toml" in str(info.value)
    assert not (tmp_path / "runs").exists()


def test_cli_run_and_demo_config(tmp_path):
    from overtone_torch.engine import TorchEngine

    demo = TorchEngine().demo_config()
    assert demo["task"]["p"] == 97 and demo["train"]["steps"] >= 1000
    config = write(tmp_path, {**SMALL, "train": {**SMALL["train"], "steps": 5}})
    env = {**os.environ, "OVERTONE_PROGRESS": "0"}
    result = subprocess.run([sys.executable, "-m", "overtone", "run", str(config), "--out", str(tmp_path)],
                            capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "small" / "report.html").exists()


def test_ddp_two_processes_match_one(tmp_path, registry):
    config = {**SMALL, "train": {**SMALL["train"], "steps": 12, "eval_every": 6, "checkpoint_every": 6}, "probes": []}
    path = write(tmp_path, config)
    single = run_experiment(path, out=tmp_path / "one", registry=registry)
    env = {**os.environ, "OVERTONE_PROGRESS": "0", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
         "-m", "overtone", "run", str(path), "--out", str(tmp_path / "two")],
        capture_output=True, text=True, env=env, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    with open_dataset(single / "metrics.nc") as a, open_dataset(tmp_path / "two" / "small" / "metrics.nc") as b:
        # same global batch split over 2 ranks; gradients averaged: equal up to float32 summation order
        np.testing.assert_allclose(a["train_batch_loss"].values, b["train_batch_loss"].values, rtol=1e-4)
        np.testing.assert_allclose(a["eval_loss"].dropna("step").values, b["eval_loss"].dropna("step").values, rtol=1e-4)
