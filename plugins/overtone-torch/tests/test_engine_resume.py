"""Resume: N steps straight equal N/2 steps, an interruption, and a resume, bit for bit (CPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from overtone import ConfigError
from overtone.io import open_dataset, read_groups
from overtone.runs import run_experiment
from torch_engine_testing import registry_with_test_plugin, small, write

#: Depend on wall-clock time, so they differ between any two runs.
TIMING = ("examples_per_s", "tokens_per_s")


@pytest.fixture(scope="module")
def test_registry():
    return registry_with_test_plugin()


def interrupt_on_call(monkeypatch, n: int) -> None:
    """Make the n-th training batch (of 64 examples) raise KeyboardInterrupt, as Ctrl-C would mid-run.

    Evaluation draws its fixed training sample (all 264 examples) through the same method;
    those calls are not counted.
    """
    from overtone_torch.tasks.modular import ModularArithmetic

    calls = {"n": 0}
    original = ModularArithmetic.sample_batch

    def sample_batch(self, split, batch_size, generator):
        calls["n"] += batch_size == 64
        if calls["n"] == n:
            raise KeyboardInterrupt
        return original(self, split, batch_size, generator)

    monkeypatch.setattr(ModularArithmetic, "sample_batch", sample_batch)


def assert_same_run(a, b) -> None:
    """Every metric (but timings), every parameter and optimizer state, probes and analyses equal exactly."""
    with open_dataset(a / "metrics.nc") as ma, open_dataset(b / "metrics.nc") as mb:
        assert sorted(ma.data_vars) == sorted(mb.data_vars)
        for name in ma.data_vars:
            if name not in TIMING:
                np.testing.assert_array_equal(ma[name].values, mb[name].values, err_msg=name)
    state_a = torch.load(a / "checkpoint.pt", weights_only=False)
    state_b = torch.load(b / "checkpoint.pt", weights_only=False)
    assert state_a["step"] == state_b["step"]
    for key, value in state_a["net"].items():
        assert torch.equal(value, state_b["net"][key]), key
    for i, slot in state_a["optimizer"]["state"].items():
        for key, value in slot.items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(state_b["optimizer"]["state"][i][key])), key
    assert torch.equal(state_a["rng"]["data"], state_b["rng"]["data"])
    with open_dataset(a / "probes.nc") as pa, open_dataset(b / "probes.nc") as pb:
        assert pa.step.values.tolist() == pb.step.values.tolist()
        for name in pa.data_vars:
            np.testing.assert_array_equal(pa[name].values, pb[name].values, err_msg=name)
    ga, gb = read_groups(a / "analysis.nc"), read_groups(b / "analysis.nc")
    np.testing.assert_array_equal(ga["test-norm"]["mean_norm"].values, gb["test-norm"]["mean_norm"].values)


CONFIG = small(
    model={"name": "mlp", "width": 32, "embed_dim": 16, "depth": 2},
    optimizer={"name": "adamw", "lr": 0.01, "weight_decay": 0.1},
    train={"grad_clip": 0.5},
    analyzers=[{"name": "test-norm", "every": 10}],
)


def test_resume_continues_bit_for_bit(tmp_path, test_registry, monkeypatch):
    config = write(tmp_path, CONFIG)
    straight = run_experiment(config, out=tmp_path / "a", registry=test_registry)

    interrupt_on_call(monkeypatch, 16)  # during step 16 of 30; the last checkpoint is step 10
    with pytest.raises(KeyboardInterrupt):
        run_experiment(config, out=tmp_path / "b", registry=test_registry)
    monkeypatch.undo()
    interrupted = tmp_path / "b" / "small"
    assert torch.load(interrupted / "checkpoint.pt", weights_only=False)["step"] == 10
    with open_dataset(interrupted / "metrics.nc") as metrics:  # what ran after the checkpoint was kept too
        assert metrics.step.values.max() == 15
    with open_dataset(interrupted / "probes.nc") as probes:
        assert probes.step.values.tolist() == [10, 15]  # step 15 is after the checkpoint: dropped on resume

    resumed = run_experiment(config, out=tmp_path / "b", resume=True, registry=test_registry)
    assert_same_run(straight, resumed)


def test_resume_before_the_first_checkpoint_starts_over(tmp_path, test_registry, monkeypatch, capsys):
    config = write(tmp_path, CONFIG)
    straight = run_experiment(config, out=tmp_path / "a", registry=test_registry)
    interrupt_on_call(monkeypatch, 4)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(config, out=tmp_path / "b", registry=test_registry)
    monkeypatch.undo()
    assert not (tmp_path / "b" / "small" / "checkpoint.pt").exists()
    resumed = run_experiment(config, out=tmp_path / "b", resume=True, registry=test_registry)
    assert "has no checkpoint yet; starting from step 0" in capsys.readouterr().err
    assert_same_run(straight, resumed)


def test_resume_a_finished_run_changes_nothing(tmp_path, test_registry):
    config = write(tmp_path, small(probes=[], train={"steps": 6}))
    run_dir = run_experiment(config, out=tmp_path, registry=test_registry)
    before = torch.load(run_dir / "checkpoint.pt", weights_only=False)
    run_experiment(config, out=tmp_path, resume=True, registry=test_registry)
    after = torch.load(run_dir / "checkpoint.pt", weights_only=False)
    assert before["step"] == after["step"] == 6
    assert all(torch.equal(before["net"][k], after["net"][k]) for k in before["net"])


def test_same_seed_same_run_other_seed_differs(tmp_path, test_registry):
    config = small(probes=[], train={"steps": 8})
    a = run_experiment(write(tmp_path, config, "a.toml"), out=tmp_path / "a", registry=test_registry)
    b = run_experiment(write(tmp_path, config, "a.toml"), out=tmp_path / "b", registry=test_registry)
    c = run_experiment(write(tmp_path, small(probes=[], train={"steps": 8}, run={"name": "small", "seed": 6}),
                             "a.toml"), out=tmp_path / "c", registry=test_registry)
    with open_dataset(a / "metrics.nc") as ma, open_dataset(b / "metrics.nc") as mb, \
            open_dataset(c / "metrics.nc") as mc:
        np.testing.assert_array_equal(ma["train_batch_loss"].values, mb["train_batch_loss"].values)
        assert not np.array_equal(ma["train_batch_loss"].values, mc["train_batch_loss"].values)


def test_resume_refuses_a_changed_config(tmp_path, test_registry):
    run_experiment(write(tmp_path, small(probes=[], train={"steps": 4})), out=tmp_path, registry=test_registry)
    with pytest.raises(ConfigError, match=r"differs from the saved one in train.steps"):
        run_experiment(write(tmp_path, small(probes=[], train={"steps": 8})), out=tmp_path, resume=True,
                       registry=test_registry)


def test_a_failed_checkpoint_write_keeps_the_previous_one(tmp_path, test_registry, monkeypatch):
    """checkpoint.pt is replaced only by a complete file (temporary file, then rename)."""
    config = write(tmp_path, small(probes=[], train={"steps": 30, "checkpoint_every": 10}))
    real_save, calls = torch.save, {"n": 0}

    def save_fails_the_second_time(obj, f, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # the step-20 checkpoint: half a file, then the disk is full
            with open(f, "wb") as handle:
                handle.write(b"PK\x03\x04 truncated")
            raise OSError(28, "No space left on device")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_fails_the_second_time)
    with pytest.raises(OSError, match="No space left"):
        run_experiment(config, out=tmp_path, registry=test_registry)
    monkeypatch.undo()
    run_dir = tmp_path / "small"
    assert torch.load(run_dir / "checkpoint.pt", weights_only=False)["step"] == 10
    assert sorted(p.name for p in run_dir.iterdir()) == ["checkpoint.pt", "config.toml", "metrics.nc"]
