"""Sweeps: a grid of config values x seeds, run locally or on dask, metrics combined.

The combined dataset has dims ``(variant, seed, step)``; each grid key becomes a coordinate
along ``variant``.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from overtone.config import apply_overrides, load_config, parse_value
from overtone.errors import ConfigError


def parse_grid(items: Sequence[str]) -> dict[str, list[Any]]:
    """Parse ``key=v1,v2`` items into ``{key: [v1, v2]}`` (values parsed as TOML values)."""
    grid: dict[str, list[Any]] = {}
    for text in items:
        key, sep, values = text.partition("=")
        if not sep or not key.strip() or not values.strip():
            raise ConfigError(f"--grid {text!r}: expected KEY=V1,V2, e.g. --grid optimizer.lr=1e-3,3e-3")
        grid[key.strip()] = [parse_value(v.strip()) for v in values.split(",")]
    return grid


def plan(base: dict[str, Any], grid: dict[str, list[Any]], seeds: int, name: str) -> list[dict[str, Any]]:
    """Every (variant, seed) config of a sweep, named ``<name>-v<i>-s<seed>``."""
    if seeds < 1:
        raise ConfigError(f"--seeds {seeds}: need at least 1")
    base_seed = base.get("run", {}).get("seed", 0)
    jobs = []
    keys = list(grid)
    for v, values in enumerate(itertools.product(*(grid[k] for k in keys)) if keys else [()]):
        assignment = dict(zip(keys, values))
        for s in range(seeds):
            config = apply_overrides(base, [f"{k}={_toml(v_)}" for k, v_ in assignment.items()])
            config.setdefault("run", {})
            config["run"]["seed"] = base_seed + s
            config["run"]["name"] = f"{name}-v{v}-s{s}"
            jobs.append({"variant": v, "seed": s, "assignment": assignment, "config": config})
    return jobs


def _toml(value: Any) -> str:
    import tomli_w

    return tomli_w.dumps({"v": value}).partition("=")[2].strip()


def _run_job(config: dict[str, Any], source: str, out: str, registry: Any, resume: bool = False) -> str:
    """Run one variant; ``registry`` is a Registry, or a :func:`_recipe` rebuilt in a worker.
    With ``resume``, a run whose directory exists continues from its checkpoint."""
    from overtone.runs import run_config

    if isinstance(registry, dict):
        registry = _rebuild(registry)
    resume = resume and (Path(out) / config["run"]["name"] / "config.toml").exists()
    return str(run_config(config, source=source, default_name=config["run"]["name"], out=out,
                          registry=registry, resume=resume))


def _recipe(registry: Any) -> dict[str, Any]:
    """How a worker process rebuilds ``registry``: the entry-point distributions and the
    plugin modules it holds. A module that cannot be imported by name cannot travel."""
    import importlib.util

    allow, modules = [], []
    for record in registry.loaded.plugins:
        if not record.ok:
            continue
        if record.source == "entry point":
            allow.append(record.name.partition(":")[0])
            continue
        name = getattr(record.module, "__name__", record.name)
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise ConfigError(
                f"the sweep's registry holds plugin module {name!r}, which worker processes "
                f"cannot import; run with workers=1 and no scheduler, or make {name!r} importable"
            )
        modules.append(name)
    return {"allow": allow, "modules": modules}


def _rebuild(recipe: dict[str, Any]) -> Any:
    from overtone.plugins import load_plugins
    from overtone.registry import Registry

    return Registry(load_plugins(use_entry_points=bool(recipe["allow"]), allow=recipe["allow"],
                                 modules=recipe["modules"]))


def run_sweep(
    config_path: str | Path,
    *,
    grid: Sequence[str] = (),
    seeds: int = 1,
    overrides: Sequence[str] = (),
    out: str | Path = "runs",
    workers: int = 1,
    scheduler: str | None = None,
    registry: Any = None,
    vectorize: bool = False,
    resume: bool = False,
    pack_memory: int | str | None = None,
) -> Path:
    """Validate every variant, run them all, and write ``<out>/<name>-sweep/sweep.nc`` and its
    ``report.html`` (each variant's median and range over seeds: :mod:`overtone.sweep_report`).

    With ``vectorize``, the members (variant x seed) whose configs differ only in per-member
    values are trained as one program per pack by the engine's ``vectorized()`` trainer
    (:func:`plan_packs`); the output has the same layout. ``pack_memory`` (bytes, or a size
    such as ``"4GB"``) caps each pack's estimated memory: a larger pack is cut into packs that
    fit (:func:`split_by_memory`); by default the budget is :func:`default_pack_memory`. With
    ``resume``, every run (or pack) whose directory exists continues from its last checkpoint;
    the others start.
    """
    from overtone.runs import resolve_experiment

    if pack_memory is not None and not vectorize:
        raise ConfigError("--pack-memory sizes the packs of --vectorize; add --vectorize or drop --pack-memory")
    config_path = Path(config_path)
    base = apply_overrides(load_config(config_path), list(overrides))
    name = base.get("run", {}).get("name") or config_path.stem
    sweep_dir = Path(out) / f"{name}-sweep"
    jobs = plan(base, parse_grid(grid), seeds, name)
    if registry is None:
        from overtone.registry import registry as default_registry

        registry = default_registry()
    source = str(config_path)
    resolved = []
    for job in jobs:  # fail before any work if one variant is invalid
        label = ", ".join(f"{k}={v!r}" for k, v in job["assignment"].items()) or "base"
        try:
            resolved.append(resolve_experiment(job["config"], source=source, default_name=name,
                                               registry=registry))
        except ConfigError as exc:
            raise ConfigError(f"sweep variant {label}: {exc}") from exc
    if vectorize:
        budget = parse_bytes(pack_memory) if pack_memory is not None else default_pack_memory(workers, scheduler)
        packs = plan_packs(jobs, resolved, registry, memory=budget)
        run_dirs, metrics = _execute_packs(jobs, packs, source, str(sweep_dir), workers, scheduler, registry,
                                           resume, resolved)
    else:
        run_dirs = _execute(jobs, source, str(sweep_dir), workers, scheduler, registry, resume)
        metrics = None
    combined = combine(jobs, run_dirs, metrics)
    from overtone.io import write_dataset
    from overtone.sweep_report import write_sweep_report

    path = write_dataset(combined, sweep_dir / "sweep.nc")
    write_sweep_report(sweep_dir, combined)
    return path


def plan_packs(jobs: list[dict[str, Any]], resolved: list[tuple[Any, dict[str, Any]]],
               registry: Any, memory: int | None = None) -> list[tuple[Any, list[int]]]:
    """Group the jobs into packs: ``(trainer, job indices)`` for each set of configs whose
    engine and pack key (the engine trainer's ``key(config)``) agree, in job order; with a
    ``memory`` budget (bytes) each pack is then cut to fit it (:func:`split_by_memory`).

    Raises ConfigError, before any training, when an engine has no ``vectorized()`` trainer
    or its trainer refuses a component. More than one pack is said on stderr, with the
    config keys that split them.
    """
    import sys

    packs: dict[Any, tuple[Any, list[int]]] = {}
    keys: dict[Any, dict[str, str]] = {}
    for index, (engine, config) in enumerate(resolved):
        engine_name = config["run"]["engine"]
        make = getattr(engine, "vectorized", None)
        if not callable(make):
            plugin = registry.entry("engine", engine_name).plugin
            raise ConfigError(f"--vectorize: engine {engine_name!r} (plugin {plugin!r}) cannot train a sweep "
                              f"as one program; drop --vectorize")
        trainer = make()
        key = (engine_name, trainer.key(config))
        packs.setdefault(key, (trainer, []))[1].append(index)
        keys[key] = dict(key[1], **{"run.engine": repr(engine_name)})
    if len(packs) > 1:
        names = sorted(set().union(*keys.values()))
        split = [n for n in names if len({k.get(n) for k in keys.values()}) > 1]
        print(f"overtone sweep --vectorize: {len(packs)} packs, split by {', '.join(split)} "
              f"(those cannot differ inside a pack)", file=sys.stderr)
        for number, (key, (_, members)) in enumerate(packs.items(), 1):
            values = ", ".join(f"{n}={keys[key].get(n)}" for n in split)
            print(f"  pack {number}: {len(members)} members ({values})", file=sys.stderr)
    planned = list(packs.values())
    if memory is None:
        return planned
    return [piece for pack in planned for piece in split_by_memory(pack, resolved, memory)]


def split_by_memory(pack: tuple[Any, list[int]], resolved: list[tuple[Any, dict[str, Any]]],
                    memory: int) -> list[tuple[Any, list[int]]]:
    """Cut ``pack`` into consecutive packs of at most ``max(1, memory // b)`` members, ``b`` the
    trainer's ``member_bytes(config)`` estimate for one member (a trainer without it: no cut).

    A cut is said on stderr with the estimate and the budget; a member estimated larger than
    the whole budget still runs, alone, and that is said too.
    """
    import sys

    trainer, members = pack
    estimate = getattr(trainer, "member_bytes", None)
    if not callable(estimate) or not members:
        return [pack]
    each = int(estimate(resolved[members[0]][1]))
    size = max(1, memory // max(each, 1))
    if size >= len(members):
        return [pack]
    name = resolved[members[0]][1]["run"]["name"]
    pieces = [(trainer, members[i:i + size]) for i in range(0, len(members), size)]
    fits = f"packs of at most {size}" if each <= memory else "packs of 1 (one member alone exceeds it)"
    print(f"overtone sweep --vectorize: the pack of {name} ({len(members)} members, about {format_bytes(each)} "
          f"each) is cut into {len(pieces)} {fits} to fit the pack memory {format_bytes(memory)} "
          f"(--pack-memory)", file=sys.stderr)
    return pieces


_UNITS = {"": 1, "b": 1, "k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_bytes(value: int | float | str) -> int:
    """A memory size in bytes: a number, or a number and a unit (``"4GB"`` = 4e9, ``"512MiB"`` =
    512 * 2^20; B, kB, MB, GB, TB are powers of 1000, KiB ... TiB powers of 1024)."""
    import re

    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number, unit = float(value), ""
    else:
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*", str(value))
        if not match or match.group(2).lower() not in _UNITS:
            raise ConfigError(f"--pack-memory {value!r}: expected a size such as 4GB, 512MB or 2GiB")
        number, unit = float(match.group(1)), match.group(2).lower()
    size = int(number * _UNITS[unit])
    if size < 1:
        raise ConfigError(f"--pack-memory {value!r}: must be positive, e.g. 4GB")
    return size


def format_bytes(size: float) -> str:
    """``size`` bytes as kB, MB or GB (powers of 1000), three significant digits."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{int(size)} B"


#: The share of a worker's memory a pack may plan on: dask's default ``target`` fraction
#: (``distributed.worker.memory.target = 0.6``), where a worker starts to spill.
MEMORY_SHARE = 0.6


def default_pack_memory(workers: int = 1, scheduler: str | None = None) -> int | None:
    """The default pack budget: :data:`MEMORY_SHARE` of the smallest dask worker's
    ``memory_limit`` with a ``scheduler``; otherwise of the memory available now (``psutil``,
    or ``/proc/meminfo``'s MemAvailable) divided among the ``workers``. None when unknown
    (no limit)."""
    if scheduler:
        from dask.distributed import Client

        with Client(scheduler) as client:
            limits = [w.get("memory_limit") or 0 for w in client.scheduler_info()["workers"].values()]
        limits = [limit for limit in limits if limit > 0]
        return int(MEMORY_SHARE * min(limits)) if limits else None
    available = _available_memory()
    return int(MEMORY_SHARE * available / max(workers, 1)) if available else None


def _available_memory() -> int | None:
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _run_pack(configs: list[dict[str, Any]], source: str, out: str, registry: Any,
              resume: bool = False) -> list[tuple[str, Any]]:
    """Train one pack (its members' raw configs, or, in the process that resolved them, their
    ``(engine, resolved config)`` pairs); ``registry`` as in :func:`_run_job`. Returns
    each member's ``(run directory, metrics)``: the metrics Dataset its trainer returned (the
    content of its ``metrics.nc``), or None when the trainer returns none (then
    :func:`combine` reads the file)."""
    from overtone.runs import prepare_run_dir, resolve_experiment

    if isinstance(registry, dict):
        registry = _rebuild(registry)
    if all(isinstance(c, tuple) for c in configs):  # resolved in this process already: (engine, config)
        members = list(configs)
    else:
        members = [resolve_experiment(c, source=source, default_name=c["run"]["name"], registry=registry)
                   for c in configs]
    resolved = [config for _, config in members]
    exists = [(Path(out) / config["run"]["name"] / "config.toml").exists() for config in resolved]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(min(8, len(resolved))) as pool:  # each config.toml's fsyncs overlap the others'
        dirs = list(pool.map(lambda c, there: prepare_run_dir(Path(out), c, resume=resume and there), resolved, exists))
    metrics = members[0][0].vectorized().run(resolved, dirs, resume=resume and any(exists))
    if metrics is None or len(metrics) != len(dirs):
        metrics = [None] * len(dirs)
    return [(str(d), m) for d, m in zip(dirs, metrics)]


def _execute_packs(jobs: list[dict[str, Any]], packs: list[tuple[Any, list[int]]], source: str, out: str,
                   workers: int, scheduler: str | None, registry: Any,
                   resume: bool = False, resolved: list[tuple[Any, dict[str, Any]]] | None = None,
                   ) -> tuple[list[str], list[Any]]:
    """Train every pack (one task each: in turn, on a process pool or on dask); return every
    job's run directory and its in-memory metrics (or None), in job order. Packs trained in
    this process take the ``resolved`` (engine, config) pairs as they are; the others resolve
    their raw configs where they run."""
    members = [indices for _, indices in packs]
    here = resolved is not None and not scheduler and workers <= 1
    items = [[resolved[i] if here else jobs[i]["config"] for i in indices] for indices in members]
    done = _dispatch(functools.partial(_run_pack, resume=resume), items,
                     source, out, workers, scheduler, registry, unit="pack")
    run_dirs: list[str] = [""] * len(jobs)
    metrics: list[Any] = [None] * len(jobs)
    for indices, pairs in zip(members, done):
        for i, (run_dir, dataset) in zip(indices, pairs):
            run_dirs[i], metrics[i] = run_dir, dataset
    return run_dirs, metrics


def _execute(jobs: list[dict[str, Any]], source: str, out: str, workers: int,
             scheduler: str | None, registry: Any, resume: bool = False) -> list[str]:
    return _dispatch(functools.partial(_run_job, resume=resume), [job["config"] for job in jobs], source, out, workers, scheduler, registry,
                     unit="run")


def _dispatch(function: Any, items: list[Any], source: str, out: str, workers: int,
              scheduler: str | None, registry: Any, *, unit: str) -> list[Any]:
    """``function(item, source, out, registry)`` for every item: in this process, on a process
    pool of ``workers``, or on the dask scheduler at ``scheduler``; results in item order."""
    from tqdm import tqdm

    from overtone.progress import progress_enabled

    bar = {"desc": "sweep", "unit": unit, "disable": not progress_enabled()}
    if scheduler:
        from dask.distributed import Client

        recipe = _recipe(registry)
        with Client(scheduler) as client:
            futures = client.map(functools.partial(_on_worker, function), items, [source] * len(items),
                                 [out] * len(items), [recipe] * len(items), pure=False)
            return client.gather(futures)
    if workers > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        recipe = _recipe(registry)
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            futures = [pool.submit(function, item, source, out, recipe) for item in items]
            return [f.result() for f in tqdm(futures, **bar)]
    return [function(item, source, out, registry) for item in tqdm(items, **bar)]


def _on_worker(function: Any, *args: Any) -> Any:
    """``function(*args)`` in a dask worker, its own dask arrays (a run's lazily read probes)
    computed in the worker's thread: sent to the cluster, their graphs would carry open file
    handles the scheduler cannot rebuild."""
    import dask

    with dask.config.set(scheduler="synchronous"):
        return function(*args)


def combine(jobs: list[dict[str, Any]], run_dirs: Sequence[str], metrics: Sequence[Any] | None = None):
    """Stack every run's metrics into one Dataset with dims ``(variant, seed, step)``.

    A run's metrics are ``metrics[i]`` when given (the Dataset its ``metrics.nc`` holds, kept
    in memory by a pack), else read from ``<run_dir>/metrics.nc``.
    """
    import xarray as xr

    from overtone.io import open_dataset

    n_variants = max(job["variant"] for job in jobs) + 1
    n_seeds = max(job["seed"] for job in jobs) + 1
    grid: list[list[Any]] = [[None] * n_seeds for _ in range(n_variants)]
    for index, (job, run_dir) in enumerate(zip(jobs, run_dirs)):
        held = metrics[index] if metrics is not None else None
        if held is not None:
            grid[job["variant"]][job["seed"]] = held
            continue
        with open_dataset(Path(run_dir) / "metrics.nc") as ds:
            grid[job["variant"]][job["seed"]] = ds.load()
    by_variant = [xr.concat(row, dim="seed", join="outer") for row in grid]
    combined = xr.concat(by_variant, dim="variant", join="outer")
    combined = combined.assign_coords(seed=range(n_seeds), variant=range(n_variants))
    assignments = {job["variant"]: job["assignment"] for job in jobs}
    for key in assignments[0]:
        values = [assignments[v][key] for v in range(n_variants)]
        combined = combined.assign_coords({key: ("variant", values)})
    combined.attrs["runs"] = "\n".join(run_dirs)
    return combined
