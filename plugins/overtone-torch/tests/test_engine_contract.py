"""What a plugin's factory returns is checked where it enters the engine, before a run directory exists."""

from __future__ import annotations

import pytest
import torch
from overtone import OvertoneError, PluginError
from overtone.io import open_dataset
from overtone.runs import run_experiment
from torch_engine_testing import registry_with_test_plugin, small, write

PLUGIN = "(plugin 'torch_engine_testing')"


@pytest.fixture(scope="module")
def test_registry():
    return registry_with_test_plugin()


BAD_PRODUCTS = [
    ({"model": {"name": "test-lambda"}},
     f"model 'test-lambda' {PLUGIN} returned a function LambdaModel.<locals>.<lambda>; "
     f"expected a torch.nn.Module mapping inputs to features"),
    ({"model": {"name": "test-none"}},
     f"model 'test-none' {PLUGIN} returned None; expected a torch.nn.Module mapping inputs to features"),
    ({"model": {"name": "test-wrong-width"}},
     f"model 'test-wrong-width' {PLUGIN} returned a tensor of shape (2, 5) from forward; "
     f"expected features of shape (2, 16) (batch, d_features = 16)"),
    ({"model": {"name": "test-item-init"}},  # needs an int d_out, and no [train] features gives one
     f"model 'test-item-init' {PLUGIN} raised TypeError: "),
    ({"model": {"name": "test-item-init"}},
     "when given d_out = None; a model picks its own feature width when d_out is None and declares it as an "
     "int attribute d_features (or set [train] features = N)"),
    ({"model": {"name": "mlp", "width": 32}, "train": {"features": 24}},  # asked for 24, mlp gives d_out
     None),
    ({"model": {"name": "transformer", "d_model": 16, "n_head": 2}, "train": {"features": 24}},
     "[model] transformer features have width d_model = 16; got d_out = 24"),
    ({"loss": {"name": "test-no-scores"}},
     f"loss 'test-no-scores' {PLUGIN} returned a _Loss; expected a torch.nn.Module with forward(features, "
     f"targets) -> scalar and scores(features) -> (..., n_classes)"),
    ({"loss": {"name": "test-vector"}},
     f"loss 'test-vector' {PLUGIN} returned a tensor of shape (2,) from forward; expected a scalar"),
    ({"task": {"name": "test-broken-task"}},
     f"task 'test-broken-task' {PLUGIN} returned a BrokenTask; expected an object with sample_batch, "
     f"eval_batches, probe_batch, input_grid, token_labels, describe (the members of "
     f"overtone_torch.task_api.Task)"),
    ({"model": {"name": "test-class"}},
     f"model 'test-class' {PLUGIN} returned the class Linear; expected a torch.nn.Module mapping inputs to "
     f"features (return an instance: Linear(...))"),
    ({"model": {"name": "test-dtype"}},
     f"model 'test-dtype' {PLUGIN} returned features of dtype torch.int64 from forward; expected "
     f"floating-point features of the loss head's dtype torch.float32 (cast in forward: .to(torch.float32))"),
    ({"model": {"name": "test-dtype", "dtype": "float64"}},
     f"model 'test-dtype' {PLUGIN} returned features of dtype torch.float64 from forward; expected "
     f"floating-point features of the loss head's dtype torch.float32"),
    ({"optimizer": {"name": "test-no-step"}},
     f"optimizer 'test-no-step' {PLUGIN} returned a _NoStep without its own step(); expected an optimizer "
     f"that defines step(closure=None), the update rule"),
    ({"optimizer": {"name": "test-keyword-params"}},
     f"optimizer 'test-keyword-params' {PLUGIN} raised TypeError: KeywordParamsOptimizer() takes 0 positional "
     f"arguments but 1 positional argument (and 1 keyword-only argument) were given; an optimizer factory is "
     f"called as factory(params, **hparams): take the parameters (or param groups) as the first positional "
     f"argument"),
    ({"optimizer": {"name": "sgd", "lr": -1.0}},
     "[optimizer] (optimizer 'sgd'): lr = -1.0 is below the minimum 0.0; allowed: 0.0 <= lr"),
]


@pytest.mark.parametrize(("change", "message"), BAD_PRODUCTS,
                         ids=lambda v: v if isinstance(v, str) else None)
def test_bad_products_fail_before_the_run_directory(tmp_path, test_registry, change, message):
    train = change.pop("train", {})
    config = write(tmp_path, small(probes=[], train={"steps": 2, **train}, **change))
    if message is None:  # the request is met: trains
        run_dir = run_experiment(config, out=tmp_path / "runs", registry=test_registry)
        assert torch.load(run_dir / "checkpoint.pt", weights_only=False)["net"]["loss.weight"].shape == (23, 24)
        return
    with pytest.raises(OvertoneError) as info:
        run_experiment(config, out=tmp_path / "runs", registry=test_registry)
    text = str(info.value)
    assert message in text and "\n" not in text
    assert text.startswith(str(config))  # names the file
    assert not (tmp_path / "runs").exists()


def test_an_engine_without_run_is_named(tmp_path, test_registry):
    config = write(tmp_path, {"run": {"engine": "test-no-run"}})
    with pytest.raises(PluginError, match=r"^engine 'test-no-run' \(plugin 'torch_engine_testing'\) returned a "
                                          r"NoRunEngine without run; an engine factory returns an object with "
                                          r"resolve\(config, \*, source, registry\) and run\("):
        run_experiment(config, out=tmp_path / "runs", registry=test_registry)
    assert not (tmp_path / "runs").exists()


def test_a_run_that_fails_at_its_start_leaves_nothing_and_reruns(tmp_path, test_registry):
    bad = write(tmp_path, small(probes=[], optimizer={"name": "test-step-fails"}, train={"steps": 4}))
    with pytest.raises(RuntimeError, match="test-step-fails"):
        run_experiment(bad, out=tmp_path / "runs", registry=test_registry)
    assert not (tmp_path / "runs" / "small").exists()
    fixed = write(tmp_path, small(probes=[], train={"steps": 4}))  # same run name, no --resume
    run_dir = run_experiment(fixed, out=tmp_path / "runs", registry=test_registry)
    with open_dataset(run_dir / "metrics.nc") as metrics:
        assert metrics.step.values.max() == 4


def test_a_run_that_wrote_files_is_kept(tmp_path, test_registry):
    """Only a run directory holding nothing but config.toml is removed on failure."""
    from overtone_torch.engine import TrainingDiverged

    config = small(optimizer={"name": "test-poisoned-sgd", "nan_at": 6}, probes=[],
                   train={"checkpoint_every": 5, "eval_every": 100, "log_every": 100})
    with pytest.raises(TrainingDiverged):
        run_experiment(write(tmp_path, config), out=tmp_path / "runs", registry=test_registry)
    assert (tmp_path / "runs" / "small" / "checkpoint.pt").exists()


def test_bad_analyzers_are_one_line_each_and_the_rest_is_kept(tmp_path, test_registry):
    from overtone.io import read_groups
    from overtone_torch.engine import AnalyzerFailed

    bad = ["dict", "dataarray", "int", "raise", "unwritable"]
    config = small(probes=[{"kind": "embeddings", "every": 10}],
                   analyzers=[{"name": "test-norm", "every": 10},
                              *({"name": "test-wrong", "returns": r, "every": 10} for r in bad)])
    with pytest.raises(AnalyzerFailed) as info:
        run_experiment(write(tmp_path, config), out=tmp_path, registry=test_registry)
    message = str(info.value)
    assert "\n" not in message
    expected = {
        "test-wrong-1": "returned a dict; expected an xarray.Dataset (build one with xr.Dataset(result))",
        "test-wrong-2": "returned an xarray.DataArray; expected an xarray.Dataset",
        "test-wrong-3": "returned an int (3); expected an xarray.Dataset",
        "test-wrong-4": "raised RuntimeError: test-wrong: boom; expected it to return an xarray.Dataset",
        "test-wrong-5": "returned a Dataset that netCDF cannot hold",
    }
    run_dir = tmp_path / "small"
    html = (run_dir / "report.html").read_text()
    for key, detail in expected.items():
        line = f"analyzer '{key}' {PLUGIN} failed at step 10: {detail}"
        assert line in message
        assert line.replace("'", "&#x27;") in html  # each failure shown in the report
    groups = read_groups(run_dir / "analysis.nc")
    assert sorted(groups) == ["test-norm"]  # the good analyzer's result is kept
    assert groups["test-norm"].step.values.tolist() == [10, 20, 30]
    assert html.count("data:image/png;base64,") == 2  # metrics + test-norm's plot

    # resuming the finished run without the bad analyzers redoes the analyses and the report
    fixed = small(probes=[{"kind": "embeddings", "every": 10}], analyzers=[{"name": "test-norm", "every": 10}])
    run_experiment(write(tmp_path, fixed), out=tmp_path, resume=True, registry=test_registry)
    assert "failed" not in (run_dir / "report.html").read_text()
    assert "test-wrong" not in (run_dir / "config.toml").read_text()


def test_resume_may_not_change_training_sections(tmp_path, test_registry):
    from overtone import ConfigError

    run_experiment(write(tmp_path, small(probes=[], train={"steps": 4})), out=tmp_path, registry=test_registry)
    changed = small(probes=[], train={"steps": 4}, optimizer={"name": "adamw", "lr": 0.5, "weight_decay": 0.1})
    with pytest.raises(ConfigError, match=r"differs from the saved one in optimizer.lr;"):
        run_experiment(write(tmp_path, changed), out=tmp_path, resume=True, registry=test_registry)


def test_nan_loss_before_any_update_blames_model_or_loss_not_lr(tmp_path, test_registry):
    from overtone_torch.engine import TrainingDiverged

    config = small(model={"name": "test-nan"}, probes=[], train={"steps": 3, "log_every": 1})
    with pytest.raises(TrainingDiverged) as info:
        run_experiment(write(tmp_path, config), out=tmp_path / "runs", registry=test_registry)
    text = str(info.value)
    assert text.startswith("the training loss at step 1 is nan; training stopped.") and "\n" not in text
    assert text.endswith("It was computed before any optimizer update, so the learning rate is not the cause: "
                         "check that the model's features and the loss are finite at initialisation "
                         "(overtone.testing.check_model, check_loss)")


def test_an_all_nan_analyzer_result_is_kept_with_one_warning(tmp_path, test_registry, capsys):
    from overtone.io import read_groups

    config = small(probes=[{"kind": "embeddings", "every": 10}],
                   analyzers=[{"name": "test-wrong", "returns": "nan", "every": 10}])
    run_dir = run_experiment(write(tmp_path, config), out=tmp_path, registry=test_registry)
    warnings = [line for line in capsys.readouterr().err.splitlines() if "NaN everywhere" in line]
    assert warnings == [f"overtone: warning: analyzer 'test-wrong' {PLUGIN} at step 10: result variable 'v' is "
                        f"NaN everywhere (written as it is); check the analyzer and the data it reads"]
    assert bool(read_groups(run_dir / "analysis.nc")["test-wrong"]["v"].isnull().all())
