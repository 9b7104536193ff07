"""Run directories: resolve a config, create ``runs/<name>/``, record versions, dispatch."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from overtone.config import apply_overrides, dump_toml, load_config
from overtone.engine import Engine
from overtone.errors import ConfigError, PluginError
from overtone.io import atomic_target
from overtone.params import Param, resolve_params

RUN_SECTION = {
    "name": Param(None, type=str, help="run directory name (default: the config file's stem)"),
    "engine": Param("torch", help="engine component that runs the experiment"),
    "seed": Param(0, help="seed of every random number generator"),
    "description": Param("", help="free text kept with the run"),
}
VERSIONS_SECTION = "versions"


def resolve_run_section(config: Mapping[str, Any], source: str, default_name: str) -> dict[str, Any]:
    """Validate ``[run]`` and fill its defaults."""
    section = config.get("run", {})
    if not isinstance(section, Mapping):
        raise ConfigError(f"{source}: 'run' must be a section [run], not a value")
    resolved = resolve_params(section, RUN_SECTION, f"{source} [run]")
    if resolved["name"] is None:
        resolved["name"] = default_name
    if not resolved["name"] or "/" in resolved["name"] or resolved["name"].startswith("."):
        raise ConfigError(f"{source} [run]: name = {resolved['name']!r} is not a usable directory name")
    return resolved


def resolve_experiment(
    config: Mapping[str, Any], *, source: str, default_name: str, registry: Any
) -> tuple[Any, dict[str, Any]]:
    """Return the engine object and the fully resolved config (defaults filled, versions recorded)."""
    config = {k: v for k, v in config.items() if k != VERSIONS_SECTION}
    run = resolve_run_section(config, source, default_name)
    try:
        engine_component = registry.get("engine", run["engine"])
    except LookupError as exc:
        raise ConfigError(f"{source} [run] engine: {exc}") from exc
    engine = engine_component.create()
    if not isinstance(engine, Engine):
        lacking = " and ".join(m for m in ("resolve", "run") if not callable(getattr(engine, m, None)))
        plugin = registry.entry("engine", run["engine"]).plugin
        raise PluginError(f"engine {run['engine']!r} (plugin {plugin!r}) returned a {type(engine).__name__} "
                          f"without {lacking}; an engine factory returns an object with "
                          f"resolve(config, *, source, registry) and run(config, run_dir, *, resume)")
    resolved = engine.resolve({**config, "run": run}, source=source, registry=registry)
    resolved["run"] = run
    resolved[VERSIONS_SECTION] = plugin_versions(registry)
    return engine, resolved


def plugin_versions(registry: Any) -> dict[str, str]:
    """Versions of overtone and every loaded plugin, for the record in ``config.toml``."""
    import overtone

    versions = {"overtone": overtone.__version__}
    for record in registry.loaded.plugins:
        if record.ok:
            versions[record.name] = record.version or "unknown"
    return versions


def _differences(a: Mapping[str, Any], b: Mapping[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, Mapping) and isinstance(vb, Mapping):
            keys += _differences(va, vb, f"{prefix}{key}.")
        elif va != vb:
            keys.append(f"{prefix}{key}")
    return keys


def prepare_run_dir(out: Path, config: Mapping[str, Any], *, resume: bool,
                    may_change: tuple[str, ...] = ()) -> Path:
    """Create (or, with ``resume``, check) ``out/<name>`` and write ``config.toml`` into it.

    A resume needs the saved config, except in the sections named in ``may_change`` (an
    engine's ``resume_may_change``, e.g. the torch engine's ``analyzers``, which do not
    touch the training state); when those differ, ``config.toml`` is rewritten.
    """
    run_dir = Path(out) / config["run"]["name"]
    if os.environ.get("RANK", "0") != "0":
        return run_dir  # under torchrun, only rank 0 creates and checks the run directory
    saved_path = run_dir / "config.toml"
    comparable = {k: v for k, v in config.items() if k != VERSIONS_SECTION}
    if resume:
        if not saved_path.exists():
            raise ConfigError(
                f"cannot resume: {str(run_dir)!r} holds no run (no config.toml); "
                f"drop --resume to start it"
            )
        saved = {k: v for k, v in load_config(saved_path).items() if k != VERSIONS_SECTION}
        # None values are not written to TOML, so compare through a TOML round trip
        from overtone.config import tomllib

        comparable = tomllib.loads(dump_toml(comparable))
        changed = _differences(saved, comparable)
        fixed = [key for key in changed if key.split(".")[0] not in may_change]
        if fixed:
            raise ConfigError(
                f"cannot resume {str(run_dir)!r}: the config differs from the saved one in "
                f"{', '.join(fixed)}; resume with the same config, or start a new run"
            )
        if changed:
            write_config(saved_path, config)
        return run_dir
    if saved_path.exists():
        raise ConfigError(
            f"run directory {str(run_dir)!r} already exists; pass --resume to continue it, "
            f"or choose another with --out or --set run.name=NEW"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    write_config(saved_path, config)
    return run_dir


def write_config(path: Path, config: Mapping[str, Any]) -> None:
    """Write a config as TOML atomically."""
    with atomic_target(path) as tmp:
        tmp.write_text(dump_toml(config), encoding="utf-8")


def run_experiment(
    config_path: str | Path,
    *,
    overrides: list[str] = (),
    out: str | Path = "runs",
    resume: bool = False,
    registry: Any = None,
) -> Path:
    """Validate a config file completely, then run it with its engine; return the run directory."""
    config_path = Path(config_path)
    raw = apply_overrides(load_config(config_path), list(overrides))
    return run_config(raw, source=str(config_path), default_name=config_path.stem,
                      out=out, resume=resume, registry=registry)


def run_config(
    raw: Mapping[str, Any],
    *,
    source: str,
    default_name: str,
    out: str | Path = "runs",
    resume: bool = False,
    registry: Any = None,
) -> Path:
    """Validate an in-memory config, create its run directory and run it."""
    if registry is None:
        from overtone.registry import registry as default_registry

        registry = default_registry()
    engine, resolved = resolve_experiment(raw, source=source, default_name=default_name,
                                          registry=registry)
    fresh = not resume and not (Path(out) / resolved["run"]["name"]).exists()
    run_dir = prepare_run_dir(Path(out), resolved, resume=resume,
                              may_change=tuple(getattr(engine, "resume_may_change", ())))
    try:
        engine.run(resolved, run_dir, resume=resume)
    except BaseException:
        if fresh:
            remove_unstarted(run_dir)
        raise
    return run_dir


def remove_unstarted(run_dir: Path) -> None:
    """Remove a run directory that holds nothing but the ``config.toml`` this run wrote.

    A run that stops before writing anything else (its engine failed at the start) leaves
    nothing behind, so the same config can be run again without ``--resume``.
    """
    if os.environ.get("RANK", "0") != "0" or not run_dir.is_dir():
        return
    if [p.name for p in run_dir.iterdir()] == ["config.toml"]:
        (run_dir / "config.toml").unlink()
        run_dir.rmdir()
