"""multitask-sparse-parity: labels are the parities, task frequencies follow p, eval is balanced."""

from __future__ import annotations

import numpy as np
import pytest
from overtone import ConfigError

torch = pytest.importorskip("torch")
from overtone_skills.sparse_parity import MultitaskSparseParity  # noqa: E402


def test_labels_are_parities_of_each_tasks_subset():
    task = MultitaskSparseParity(seed=0, n_tasks=4, n_bits=12, k_bits=3, eval_per_task=50)
    x, y = task.sample_batch("train", 2000, torch.Generator().manual_seed(1))
    x, y = x.numpy(), y.numpy()
    ids = x[:, :4].argmax(1)
    assert (x[:, :4].sum(1) == 1).all()
    subsets = task.subsets.numpy()
    expected = np.array([int(x[i, 4 + subsets[k]].sum()) % 2 for i, k in enumerate(ids)])
    np.testing.assert_array_equal(y, expected)
    np.testing.assert_array_equal(task.skill_of(torch.tensor(x)).numpy(), ids)


def test_task_frequencies_follow_the_power_law():
    task = MultitaskSparseParity(seed=0, n_tasks=5, alpha=1.0)
    x, _ = task.sample_batch("train", 40000, torch.Generator().manual_seed(2))
    counts = np.bincount(task.skill_of(x).numpy(), minlength=5) / 40000
    p = 1 / np.arange(1, 6)
    p /= p.sum()
    # binomial standard error at n = 40000 is below 0.0025: allow 4 of them
    np.testing.assert_allclose(counts, p, atol=0.01)


def test_eval_set_is_balanced_and_fixed():
    a = MultitaskSparseParity(seed=3, n_tasks=3, eval_per_task=20)
    b = MultitaskSparseParity(seed=3, n_tasks=3, eval_per_task=20)
    xs = torch.cat([x for x, _ in a.eval_batches(7)])
    assert np.bincount(a.skill_of(xs).numpy()).tolist() == [20, 20, 20]
    torch.testing.assert_close(a.eval_x, b.eval_x)
    assert 0.3 < float(a.eval_y.float().mean()) < 0.7


@pytest.mark.parametrize("params, message", [
    ({"n_tasks": 0}, "n_tasks = 0 must be an integer >= 1"),
    ({"k_bits": 40}, "k_bits = 40 exceeds n_bits = 32"),
])
def test_bad_params(params, message):
    with pytest.raises(ConfigError, match=message):
        MultitaskSparseParity(seed=0, **params)


def test_engine_reports_per_skill_eval_losses_that_match_a_direct_computation(tmp_path):
    pytest.importorskip("overtone_torch")
    from overtone.registry import registry
    from overtone.runs import run_config
    from overtone_skills.onsets import SkillOnsets
    from overtone_torch import load_run

    config = {"run": {"name": "sp", "seed": 1},
              "task": {"name": "multitask-sparse-parity", "n_tasks": 3, "n_bits": 8,
                       "eval_per_task": 40},
              "model": {"name": "mlp", "width": 32},
              "optimizer": {"name": "adamw", "lr": 0.01},
              "train": {"steps": 40, "batch_size": 64, "eval_every": 20}}
    run_dir = run_config(config, source="t.toml", default_name="sp", out=tmp_path,
                         registry=registry(refresh=True))
    import xarray as xr

    metrics = xr.open_dataset(run_dir / "metrics.nc", engine="h5netcdf")
    losses = metrics["eval_loss_skill"].dropna("step", how="all")
    assert losses.dims == ("step", "skill") and losses.sizes["skill"] == 3
    assert losses["step"].values.tolist() == [20, 40]
    # independent: cross-entropy of the final network on each skill's evaluation examples
    loaded = load_run(run_dir)
    x, y = loaded.task.eval_x, loaded.task.eval_y
    with torch.no_grad():
        logits = loaded.loss.scores(loaded.model(x)).double()
    skills = loaded.task.skill_of(x)
    for k in range(3):
        mask = skills == k
        expected = torch.nn.functional.cross_entropy(logits[mask], y[mask]).item()
        np.testing.assert_allclose(float(losses.sel(step=40, skill=k + 1)), expected, rtol=1e-5)
        accuracy = (logits[mask].argmax(1) == y[mask]).double().mean().item()
        np.testing.assert_allclose(float(metrics["eval_acc_skill"].sel(step=40, skill=k + 1)),
                                   accuracy)
    onsets = SkillOnsets(variable="eval_loss_skill")(metrics.dropna("step", subset=["eval_loss"]))
    assert onsets.sizes["skill"] == 3
