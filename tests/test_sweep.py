"""Sweeps combine runs into (variant, seed, step)."""

from __future__ import annotations

import numpy as np
import pytest
from overtone import ConfigError
from overtone.io import open_dataset
from overtone.sweep import parse_grid, run_sweep


def test_grid_parsing():
    assert parse_grid(["optimizer.lr=1e-3,3e-3", "model.act=relu,gelu"]) == {
        "optimizer.lr": [1e-3, 3e-3], "model.act": ["relu", "gelu"]}
    with pytest.raises(ConfigError, match="expected KEY=V1,V2"):
        parse_grid(["lr"])


def test_sweep_combines_variants_and_seeds(tmp_path, example_registry):
    config = tmp_path / "fit.toml"
    config.write_text("[run]\nengine = 'linreg'\n[train]\nsteps = 12\ncheckpoint_every = 4\n")
    out = run_sweep(config, grid=["train.lr=0.05,0.2"], seeds=3, out=tmp_path, registry=example_registry)
    with open_dataset(out) as ds:
        assert dict(ds["train_loss"].sizes) == {"variant": 2, "seed": 3, "step": 12}
        assert ds["train.lr"].values.tolist() == [0.05, 0.2]
        loss = ds["train_loss"].values
    # seeds differ (different data), and a larger step size descends faster on every seed
    assert not np.allclose(loss[0, 0], loss[0, 1])
    assert (loss[1, :, -1] < loss[0, :, -1]).all()
    with open_dataset(tmp_path / "fit-sweep" / "fit-v1-s2" / "metrics.nc") as single:
        np.testing.assert_array_equal(single["train_loss"].values, loss[1, 2])


def test_invalid_variant_fails_before_any_run(tmp_path, example_registry):
    config = tmp_path / "fit.toml"
    config.write_text("[run]\nengine = 'linreg'\n")
    with pytest.raises(ConfigError, match=r"sweep variant train.steps='x': .*steps = 'x' has type str"):
        run_sweep(config, grid=["train.steps=5,x"], out=tmp_path, registry=example_registry)
    assert not (tmp_path / "fit-sweep").exists()


def test_sweep_on_a_process_pool(tmp_path, monkeypatch):
    from overtone_core_testing import cli_env

    for key, value in cli_env().items():
        monkeypatch.setenv(key, value)
    from overtone.registry import registry

    config = tmp_path / "fit.toml"
    config.write_text("[run]\nengine = 'linreg'\n[train]\nsteps = 5\ncheckpoint_every = 5\n")
    out = run_sweep(config, seeds=2, workers=2, out=tmp_path, registry=registry(refresh=True))
    with open_dataset(out) as ds:
        assert dict(ds["train_loss"].sizes) == {"variant": 1, "seed": 2, "step": 5}
    registry(refresh=True)


def test_sweep_on_a_dask_cluster(tmp_path, monkeypatch):
    from dask.distributed import LocalCluster
    from overtone_core_testing import cli_env

    for key, value in cli_env().items():
        monkeypatch.setenv(key, value)
    from overtone.registry import registry

    config = tmp_path / "fit.toml"
    config.write_text("[run]\nengine = 'linreg'\n[train]\nsteps = 6\ncheckpoint_every = 3\n")
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster:
        out = run_sweep(config, grid=["train.lr=0.1,0.2"], seeds=2, out=tmp_path,
                        scheduler=cluster.scheduler_address, registry=registry(refresh=True))
    local = run_sweep(config, grid=["train.lr=0.1,0.2"], seeds=2, out=tmp_path / "local",
                      registry=registry())
    with open_dataset(out) as a, open_dataset(local) as b:
        assert dict(a["train_loss"].sizes) == {"variant": 2, "seed": 2, "step": 6}
        np.testing.assert_array_equal(a["train_loss"].values, b["train_loss"].values)
    registry(refresh=True)


@pytest.fixture
def tiny_registry(monkeypatch):
    """A registry holding only a test plugin that the global registry does not load."""
    import sys
    import types

    from lib_api_plugin import TinyEngine
    from overtone import Component
    from overtone.plugins import load_plugins
    from overtone.registry import Registry
    from overtone_core_testing import make_plugin

    module = make_plugin("sweep_only_plugin", overtone_engines=[
        Component("engine", "sweep-only", TinyEngine, "fixed loss curve")])
    assert isinstance(module, types.ModuleType)
    monkeypatch.setitem(sys.modules, "sweep_only_plugin", module)
    return Registry(load_plugins(use_entry_points=False, modules=["sweep_only_plugin"]))


def test_sweep_runs_with_the_registry_it_is_given(tmp_path, tiny_registry):
    from overtone.registry import registry

    assert "sweep-only" not in registry().names("engine")
    config = tmp_path / "t.toml"
    config.write_text("[run]\nengine = 'sweep-only'\n[train]\nsteps = 3\n")
    out = run_sweep(config, grid=["train.scale=1.0,2.0"], seeds=2, out=tmp_path, registry=tiny_registry)
    with open_dataset(out) as ds:
        step = np.arange(3)
        expected = np.array([[scale / (1.0 + step) + seed for seed in (0, 1)] for scale in (1.0, 2.0)])
        np.testing.assert_allclose(ds["train_loss"].values, expected)


def test_sweep_refuses_a_registry_workers_cannot_rebuild(tmp_path, tiny_registry):
    config = tmp_path / "t.toml"
    config.write_text("[run]\nengine = 'sweep-only'\n")
    with pytest.raises(ConfigError, match="holds plugin module 'sweep_only_plugin', which worker "
                                          "processes cannot import; run with workers=1"):
        run_sweep(config, seeds=2, workers=2, out=tmp_path, registry=tiny_registry)
    assert not (tmp_path / "t-sweep").exists()


@pytest.mark.parametrize(("setting", "shown"), [("0", False), ("1", True)])
def test_sweep_progress_bar_follows_overtone_progress(tmp_path, tiny_registry, monkeypatch, capsys,
                                                      setting, shown):
    monkeypatch.setenv("OVERTONE_PROGRESS", setting)
    config = tmp_path / "t.toml"
    config.write_text("[run]\nengine = 'sweep-only'\n")
    run_sweep(config, seeds=2, out=tmp_path, registry=tiny_registry)
    assert ("sweep: 100%" in capsys.readouterr().err) is shown


def test_vectorize_refuses_an_engine_without_a_pack_trainer(tmp_path):
    """The linreg example engine has no ``vectorized()``: one line naming it, non-zero exit, nothing run."""
    from overtone_core_testing import run_cli

    config = tmp_path / "fit.toml"
    config.write_text("[run]\nengine = 'linreg'\n[train]\nsteps = 3\n")
    done = run_cli("sweep", str(config), "--seeds", "2", "--vectorize", "--out", str(tmp_path))
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert ("--vectorize: engine 'linreg' (plugin 'overtone_example.plugin') cannot train a sweep as one program; "
            "drop --vectorize") in lines[0]
    assert not (tmp_path / "fit-sweep").exists()



def test_sweep_resume_continues_started_runs_and_starts_the_rest(tmp_path, example_registry):
    config = tmp_path / "fit.toml"
    config.write_text("[run]\nengine = 'linreg'\n[train]\nsteps = 6\ncheckpoint_every = 3\n")
    first = run_sweep(config, grid=["train.lr=0.1"], seeds=1, out=tmp_path, registry=example_registry)
    with open_dataset(first) as ds:
        before = ds["train_loss"].values.copy()
    with pytest.raises(ConfigError, match="already exists; pass --resume"):
        run_sweep(config, grid=["train.lr=0.1"], seeds=2, out=tmp_path, registry=example_registry)
    out = run_sweep(config, grid=["train.lr=0.1"], seeds=2, out=tmp_path, registry=example_registry, resume=True)
    with open_dataset(out) as ds:
        assert dict(ds["train_loss"].sizes) == {"variant": 1, "seed": 2, "step": 6}
        np.testing.assert_array_equal(ds["train_loss"].values[0, 0], before[0, 0])
        assert np.isfinite(ds["train_loss"].values[0, 1]).all()


@pytest.mark.parametrize(("text", "size"), [("4GB", 4 * 10**9), ("512MB", 512 * 10**6), ("2GiB", 2 * 2**30),
                                            ("1.5 kB", 1500), ("1000", 1000), (2**20, 2**20)])
def test_pack_memory_sizes(text, size):
    from overtone.sweep import parse_bytes

    assert parse_bytes(text) == size


@pytest.mark.parametrize("text", ["4 parsecs", "GB", "-1GB", "0"])
def test_a_bad_pack_memory_is_one_line(text):
    from overtone.sweep import parse_bytes

    with pytest.raises(ConfigError, match=r"^--pack-memory .*e\.g\. 4GB|^--pack-memory .*such as 4GB"):
        parse_bytes(text)


def test_pack_memory_without_vectorize_is_refused(tmp_path, example_registry):
    config = tmp_path / "fit.toml"
    config.write_text("[run]\nengine = 'linreg'\n")
    with pytest.raises(ConfigError, match="^--pack-memory sizes the packs of --vectorize; add --vectorize"):
        run_sweep(config, out=tmp_path, registry=example_registry, pack_memory="1GB")
    assert not (tmp_path / "fit-sweep").exists()


def test_the_default_pack_memory_is_a_share_of_the_smallest_worker(monkeypatch):
    """With a scheduler: 60% of the smallest dask worker's memory_limit; locally: 60% of the
    available memory shared among the workers."""
    from dask.distributed import LocalCluster
    from overtone import sweep

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None,
                      memory_limit="1GB") as cluster:
        assert sweep.default_pack_memory(scheduler=cluster.scheduler_address) == int(0.6 * 10**9)
    monkeypatch.setattr(sweep, "_available_memory", lambda: 8 * 10**9)
    assert sweep.default_pack_memory(workers=4) == int(0.6 * 2 * 10**9)
    monkeypatch.setattr(sweep, "_available_memory", lambda: None)
    assert sweep.default_pack_memory() is None
