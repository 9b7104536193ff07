"""The torch engine end to end: validation before work, probes, analyzers, report, NaN stop, CLI."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from overtone import ConfigError
from overtone.io import open_dataset, read_groups
from overtone.runs import run_experiment
from torch_engine_testing import registry_with_test_plugin, small, write


@pytest.fixture(scope="module")
def test_registry():
    return registry_with_test_plugin()


BAD_CONFIGS = [
    ({"task": {"name": "modular"}}, "[task]: no task named 'modular'; installed: "),
    ({"model": {"name": "cnn"}}, "[model]: no model named 'cnn'"),
    ({"loss": {"name": "harmnic"}}, "[loss]: no loss named 'harmnic'"),
    ({"optimizer": {"name": "adamw", "lr": "fast"}}, "lr = 'fast' has type str; expected float"),
    ({"train": {"steps": "100"}}, "[train]: steps = '100' has type str; expected int"),
    ({"train": {"steps": 0}}, "[train]: steps = 0 is below the minimum 1; allowed: 1 <= steps"),
    ({"train": {"batch_size": 1000}}, "[train] batch_size = 1000 is larger than the training set (264 examples"),
    ({"train": {"device": "tpu"}}, "[train]: device = 'tpu' is not allowed; allowed values: 'auto', 'cpu', 'cuda'"),
    ({"trainer": {}}, "unknown section [trainer]; allowed sections: run, task, model"),
    ({"model": {"name": "mlp", "widht": 3}}, "unknown key 'widht'; allowed keys: activation, depth, embed_dim"),
    ({"task": {"name": "modular-arithmetic", "p": 24}}, "[task] p = 24 must be a prime"),
    ({"schedule": {"decay": "linear"}}, "[schedule]: decay = 'linear' is not allowed; allowed values: 'constant', 'cosine'"),
    ({"schedule": {"min_lr_ratio": 2}},
     "[schedule]: min_lr_ratio = 2.0 is above the maximum 1.0; allowed: 0.0 <= min_lr_ratio <= 1.0"),
    ({"probes": [{"kind": "attention"}]}, "[[probes]] #1: kind = 'attention' is not allowed"),
    ({"probes": {"kind": "hidden"}}, "write [[probes]] (an array of tables)"),
    ({"probes": [{"kind": "weights", "names": ["model.nope"]}]},
     "[[probes]] #1: kind = 'weights': no parameter 'model.nope'; the parameters are: model.token_embedding.weight"),
    ({"task": {"name": "digits"}, "probes": [{"kind": "embeddings"}]},
     "[[probes]] #1: kind = 'embeddings' needs a model with a token_embedding"),
    ({"task": {"name": "digits"}, "probes": [{"kind": "outputs"}]},
     "[[probes]] #1: kind = 'outputs' needs a task with an input grid"),
    ({"analyzers": [{"name": "pca"}]}, "[[analyzers]] #1: no analyzer named 'pca'"),
    ({"analyzers": [{"name": "test-norm", "colour": 1}]}, "[[analyzers]] #1 (analyzer 'test-norm'): unknown key 'colour'"),
    ({"analyzers": [{"name": "test-norm", "every": "often"}]}, "[[analyzers]] #1: every = 'often' has type str"),
    ({"probes": [], "analyzers": [{"name": "test-norm"}]}, "reads probes, but no [[probes]] are configured"),
    ({"model": {"name": "transformer", "d_model": 30, "n_head": 4}}, "d_model = 30 must be divisible by n_head = 4"),
]
if not torch.cuda.is_available():
    BAD_CONFIGS.append(({"train": {"device": "cuda"}}, "[train]: device = 'cuda' but torch sees no CUDA device"))


@pytest.mark.parametrize(("change", "message"), BAD_CONFIGS)
def test_bad_configs_fail_before_training(tmp_path, test_registry, change, message):
    config = write(tmp_path, small(**change))
    with pytest.raises(ConfigError) as info:
        run_experiment(config, out=tmp_path / "runs", registry=test_registry)
    assert message in str(info.value)
    assert str(info.value).startswith(str(config))  # names the file
    assert not (tmp_path / "runs").exists()  # nothing was created, let alone trained


def test_a_model_the_meta_device_cannot_build_is_checked_on_the_cpu(tmp_path, test_registry):
    with torch.device("meta"), pytest.raises(RuntimeError):  # the premise: .item() needs data
        test_registry.get("model", "test-item-init").create(
            input_spec={"kind": "tokens", "vocab_size": 5, "seq_len": 2, "output": "pooled"}, d_out=4)
    config = small(model={"name": "test-item-init"}, train={"steps": 2, "features": 8},
                   probes=[{"kind": "embeddings", "every": 2}])
    run_dir = run_experiment(write(tmp_path, config), out=tmp_path, registry=test_registry)
    assert torch.load(run_dir / "checkpoint.pt", weights_only=False)["step"] == 2


def test_ddp_batch_must_split_evenly(tmp_path, test_registry, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "3")
    with pytest.raises(ConfigError, match="batch_size = 64 does not divide evenly over WORLD_SIZE = 3"):
        run_experiment(write(tmp_path, small()), out=tmp_path / "runs", registry=test_registry)
    assert not (tmp_path / "runs").exists()


def test_probes_analyzers_and_report(tmp_path, test_registry):
    config = small(analyzers=[{"name": "test-norm", "every": 10}])
    run_dir = run_experiment(write(tmp_path, config), out=tmp_path, registry=test_registry)
    with open_dataset(run_dir / "probes.nc") as probes:
        # the union of the probes' steps; each probe only at its own (embeddings every 10, hidden 15, ...)
        assert probes.step.values.tolist() == [10, 15, 20, 30]
        assert probes["embeddings"].dims == ("step", "token", "embed_dim")
        assert probes["embeddings"].sizes == {"step": 4, "token": 23, "embed_dim": 16}
        assert np.isnan(probes["embeddings"].sel(step=15)).all()
        assert probes["hidden"].dims == ("step", "sample", "feature") and probes["hidden"].sizes["sample"] == 20
        assert probes["hidden"].sel(step=[15, 30]).notnull().all()
        assert probes["labels"].dims == ("sample",)
        outputs = probes["outputs"].sel(step=30).values
        assert outputs.shape == (23, 23, 23) and probes["outputs"].attrs["output"] == "probabilities"
        np.testing.assert_allclose(outputs.sum(-1), 1.0, rtol=1e-5)
        assert probes.attrs["p"] == 23
        assert probes["weight_loss_weight"].dims == ("step", "loss_weight_out", "loss_weight_in")
        assert probes["weight_model_layers_0_weight"].sizes["model_layers_0_weight_in"] == 32
        # the probes are the model's state: the final embeddings are the checkpoint's
        final = torch.load(run_dir / "checkpoint.pt", weights_only=False)["net"]
        np.testing.assert_array_equal(probes["embeddings"].sel(step=30).values,
                                      final["model.token_embedding.weight"].numpy())
        np.testing.assert_array_equal(probes["weight_loss_weight"].sel(step=30).values, final["loss.weight"].numpy())
        labels = probes["labels"].values
    from overtone_torch.tasks.modular import ModularArithmetic

    task = ModularArithmetic(seed=5, p=23, train_fraction=0.5)
    np.testing.assert_array_equal(labels, task.probe_batch(20)[1].numpy())
    analysis = read_groups(run_dir / "analysis.nc")
    result = analysis["test-norm"]
    # the analyzer saw the embedding steps only (10, 20, 30), recomputed on the finished run
    assert result.attrs["steps_seen"] == 3 and result.step.values.tolist() == [10, 20, 30]
    expected = np.linalg.norm(final["model.token_embedding.weight"].double().numpy(), axis=1).mean()
    assert float(result["mean_norm"].sel(step=30)) == pytest.approx(expected, rel=1e-6)
    html = (run_dir / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 2  # metric curves + the analyzer's plot
    assert "Analyzer: test-norm" in html and "first step with eval_acc" in html
    with open_dataset(run_dir / "metrics.nc") as metrics:
        assert metrics["eval_acc"].dropna("step").step.values.tolist() == [5, 10, 15, 20, 25, 30]
        assert metrics["train_batch_loss"].notnull().all() and metrics.sizes["step"] == 30
        assert metrics["lr"].sel(step=1) == pytest.approx(0.01 / 3)  # warm-up: the lr step 1 used
        assert metrics["eval_acc"].attrs["units"] == "1" and metrics["eval_loss"].attrs["units"] == "nat"
        assert metrics.attrs["model"] == "mlp" and metrics.attrs["seed"] == 5
        examples = metrics["examples_per_s"].dropna("step")
        assert examples.step.values.tolist() == [5, 10, 15, 20, 25, 30] and (examples > 0).all()
        # token inputs (a, b): two tokens per example
        np.testing.assert_allclose(metrics["tokens_per_s"].dropna("step").values, 2 * examples.values)


def test_analyzer_runs_during_training(tmp_path, test_registry, monkeypatch):
    """analysis.nc is written at the analyzer's steps, before the run ends."""
    from overtone_torch.analyses import Analyses

    seen = []
    original = Analyses.run

    def spy(self, step, probes, metrics, *, final=False):
        original(self, step, probes, metrics, final=final)
        if not final and (self.run_dir / "analysis.nc").exists():
            seen.append((step, int(read_groups(self.run_dir / "analysis.nc")["test-norm"].attrs["steps_seen"])))

    monkeypatch.setattr(Analyses, "run", spy)
    config = small(probes=[{"kind": "embeddings", "every": 5}], analyzers=[{"name": "test-norm", "every": 10}])
    run_experiment(write(tmp_path, config), out=tmp_path, registry=test_registry)
    assert seen == [(10, 2), (20, 4), (30, 6)]


def test_two_entries_of_one_analyzer_get_their_own_groups(tmp_path, test_registry):
    config = small(probes=[{"kind": "embeddings", "every": 10}, {"kind": "hidden", "every": 15, "samples": 8}],
                   analyzers=[{"name": "test-norm"}, {"name": "test-norm", "variable": "hidden"}])
    run_dir = run_experiment(write(tmp_path, config), out=tmp_path, registry=test_registry)
    groups = read_groups(run_dir / "analysis.nc")
    assert sorted(groups) == ["test-norm-1", "test-norm-2"]
    assert groups["test-norm-1"].step.values.tolist() == [10, 20, 30]  # embeddings' steps
    assert groups["test-norm-2"].step.values.tolist() == [15, 30]  # hidden's steps


def test_failing_analyzer_keeps_the_run(tmp_path, test_registry):
    from overtone_torch.engine import AnalyzerFailed

    config = small(analyzers=[{"name": "test-norm", "every": 10, "fail": True}])
    with pytest.raises(AnalyzerFailed, match="analyzer 'test-norm' \\(plugin 'torch_engine_testing'\\) failed at step 10: test-norm: asked to fail"):
        run_experiment(write(tmp_path, config), out=tmp_path, registry=test_registry)
    run_dir = tmp_path / "small"
    assert torch.load(run_dir / "checkpoint.pt", weights_only=False)["step"] == 30  # training finished
    assert "failed: analyzer" in (run_dir / "report.html").read_text()


def test_nan_loss_stops_and_keeps_data(tmp_path, test_registry):
    from overtone_torch.engine import TrainingDiverged

    config = small(optimizer={"name": "sgd", "lr": 1e12}, train={"checkpoint_every": 2, "grad_clip": 0.0,
                                                                   "log_every": 1})
    with pytest.raises(TrainingDiverged) as info:
        run_experiment(write(tmp_path, config), out=tmp_path, registry=test_registry)
    message = str(info.value)
    assert "\n" not in message and "lower [optimizer] lr" in message.lower()
    bad_step = int(message.split("step ")[1].split()[0])
    run_dir = tmp_path / "small"
    state = torch.load(run_dir / "checkpoint.pt", weights_only=False)
    assert 0 < state["step"] < bad_step and f"(step {state['step']})" in message
    assert all(torch.isfinite(v).all() for v in state["net"].values())
    with open_dataset(run_dir / "metrics.nc") as metrics:
        losses = metrics["train_batch_loss"]
        assert losses.step.values.tolist() == list(range(1, bad_step))  # every good step, not the bad one
        assert np.isfinite(losses.values).all()
    assert (run_dir / "report.html").exists()


def test_nan_parameter_never_reaches_a_checkpoint(tmp_path, test_registry):
    """A step whose loss is finite but whose update writes NaN is caught before the checkpoint."""
    from overtone_torch.engine import TrainingDiverged

    config = small(optimizer={"name": "test-poisoned-sgd", "nan_at": 10},
                   train={"checkpoint_every": 5, "eval_every": 100, "log_every": 100})
    with pytest.raises(TrainingDiverged, match=r"a parameter is NaN or infinite after step 10; .*\(step 5\)"):
        run_experiment(write(tmp_path, config), out=tmp_path, registry=test_registry)
    state = torch.load(tmp_path / "small" / "checkpoint.pt", weights_only=False)
    assert state["step"] == 5 and all(torch.isfinite(v).all() for v in state["net"].values())


def test_cli_run_prints_one_line_error_and_demo_config(tmp_path):
    from overtone_torch.engine import TorchEngine

    demo = TorchEngine().demo_config()
    assert demo["task"]["name"] == "modular-arithmetic" and demo["task"]["p"] == 97
    assert demo["optimizer"]["weight_decay"] >= 0.5
    env = {**os.environ, "OVERTONE_PROGRESS": "0"}
    config = write(tmp_path, small(train={"steps": 5}, probes=[]))
    result = subprocess.run([sys.executable, "-m", "overtone", "run", str(config), "--out", str(tmp_path)],
                            capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "small" / "report.html").exists()
    bad = write(tmp_path, small(optimizer={"name": "sgd", "lr": 1e12}, train={"grad_clip": 0.0}, probes=[],
                                run={"name": "bad"}), "bad.toml")
    result = subprocess.run([sys.executable, "-m", "overtone", "run", str(bad), "--out", str(tmp_path)],
                            capture_output=True, text=True, env=env)
    assert result.returncode == 2
    assert result.stderr.startswith("overtone: error: the training loss at step ")
    assert result.stderr.strip().count("\n") == 0



def test_char_transformer_tied_head_and_sequence_probes(tmp_path, test_registry):
    config = {
        "run": {"name": "char", "seed": 1},
        "task": {"name": "char-text", "context": 8, "eval_windows": 16},
        "model": {"name": "transformer", "n_layer": 1, "n_head": 2, "d_model": 16, "tie_weights": True},
        "train": {"steps": 4, "batch_size": 8, "eval_every": 2, "threads": 1},
        "probes": [{"kind": "hidden", "every": 2, "samples": 12}, {"kind": "embeddings", "every": 4}],
    }
    run_dir = run_experiment(write(tmp_path, config), out=tmp_path, registry=test_registry)
    state = torch.load(run_dir / "checkpoint.pt", weights_only=False)["net"]
    assert torch.equal(state["loss.weight"], state["model.token_embedding.weight"])  # tied, and trained as one
    with open_dataset(run_dir / "probes.nc") as probes:
        vocab = probes.attrs["vocab"]
        assert probes["hidden"].sizes == {"step": 2, "sample": 12, "feature": 16}
        assert probes["labels"].dims == ("sample",) and 0 <= probes["labels"].min() <= probes["labels"].max() < vocab
        assert probes["embeddings"].sizes["token"] == vocab and probes["token_label"].size == vocab
    with open_dataset(run_dir / "metrics.nc") as metrics:
        # 8 characters per window; accuracy is per predicted character
        np.testing.assert_allclose(metrics["tokens_per_s"].dropna("step").values,
                                   8 * metrics["examples_per_s"].dropna("step").values)
        assert 0 <= float(metrics["eval_acc"].sel(step=4)) <= 1


@pytest.mark.parametrize(("task", "loss", "optimizer"), [
    ({"name": "gaussian-mixture", "n_samples": 200, "dim": 4}, "mse", {"name": "sgd", "lr": 0.1, "momentum": 0.9}),
    ({"name": "digits"}, "cross-entropy", {"name": "adam", "lr": 0.003}),
])
def test_vector_tasks_with_other_losses_and_optimizers(tmp_path, test_registry, task, loss, optimizer):
    config = small(task=task, loss={"name": loss}, optimizer=optimizer, model={"name": "mlp", "width": 16},
                   probes=[{"kind": "hidden", "every": 10, "samples": 10}], train={"steps": 20, "eval_every": 10})
    run_dir = run_experiment(write(tmp_path, config), out=tmp_path, registry=test_registry)
    with open_dataset(run_dir / "metrics.nc") as metrics:
        assert np.isfinite(metrics["train_batch_loss"].values).all()
        assert "tokens_per_s" not in metrics  # vector inputs: examples per second only
        acc = metrics["eval_acc"].dropna("step")
        chance = 1 / (4 if task["name"] == "gaussian-mixture" else 10)
        # it learns: better than at step 10, and well above chance (deterministic on CPU)
        assert acc.step.values.tolist() == [10, 20] and float(acc[-1]) > max(float(acc[0]), 1.3 * chance)
