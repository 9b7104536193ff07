"""Plugin loading: the ``overtone`` entry-point group plus modules named in the environment.

Each entry point is loaded on its own inside ``try``/``except``, so one broken plugin is
reported by name and the others still work (pluggy's own loader stops at the first failure).

Environment:

- ``OVERTONE_PLUGINS``: comma-separated importable modules to load as plugins as well.
- ``OVERTONE_LOAD_PLUGINS``: comma-separated distribution names; only these entry points are
  loaded. Set but empty means no entry-point plugin is loaded.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType

import pluggy

from overtone import hookspecs

ENTRY_POINT_GROUP = "overtone"


def normalize_distribution_name(name: str) -> str:
    """Normalize a distribution name as PEP 503 does (``Overtone_Torch`` -> ``overtone-torch``)."""
    return re.sub(r"[-_.]+", "-", name).lower().strip()


@dataclass
class PluginRecord:
    """A plugin that was asked for: where it came from, and whether it loaded."""

    name: str
    source: str  # "entry point" or "OVERTONE_PLUGINS"
    version: str | None = None
    module: ModuleType | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class LoadResult:
    """The plugin manager together with a record of every plugin it tried to load."""

    manager: pluggy.PluginManager
    plugins: list[PluginRecord] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def plugin_name(self, plugin: object) -> str:
        for record in self.plugins:
            if record.module is plugin:
                return record.name
        return self.manager.get_name(plugin) or repr(plugin)

    def version_of(self, name: str) -> str | None:
        for record in self.plugins:
            if record.name == name:
                return record.version
        return None


def _env_list(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [item.strip() for item in value.split(",") if item.strip()]


def _dist_name(point: EntryPoint) -> str:
    return normalize_distribution_name(point.dist.name) if point.dist else point.name


def _register(result: LoadResult, record: PluginRecord, module: ModuleType) -> None:
    manager = result.manager
    try:
        manager.register(module, name=record.name)
        # an implementation of a hook overtone does not define
        manager.check_pending()
    except Exception as exc:  # pluggy leaves a failed plugin half-registered
        if manager.is_registered(module):
            manager.unregister(module)
        else:
            for hook_caller in manager.get_hookcallers(module) or []:
                hook_caller._remove_plugin(module)  # pragma: no cover
        record.error = f"invalid hook implementation: {exc}"
        return
    record.module = module


def load_plugins(
    *,
    use_entry_points: bool = True,
    modules: list[str] | None = None,
    allow: list[str] | None = None,
    environ: dict[str, str] | None = None,
) -> LoadResult:
    """Create a plugin manager holding the selected plugins.

    ``modules`` and ``allow`` default to ``OVERTONE_PLUGINS`` and ``OVERTONE_LOAD_PLUGINS``.
    Failures never raise: they are recorded on the returned :class:`PluginRecord` s.
    """
    env = os.environ if environ is None else environ
    if modules is None:
        modules = _env_list(env.get("OVERTONE_PLUGINS")) or []
    if allow is None:
        allow = _env_list(env.get("OVERTONE_LOAD_PLUGINS"))

    manager = pluggy.PluginManager(ENTRY_POINT_GROUP)
    manager.add_hookspecs(hookspecs)
    result = LoadResult(manager)

    if use_entry_points:
        _load_entry_points(result, allow)

    for module_name in modules:
        record = PluginRecord(name=module_name, source="OVERTONE_PLUGINS")
        result.plugins.append(record)
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            record.error = f"import failed: {type(exc).__name__}: {exc}"
            continue
        package = sys.modules.get(module_name.partition(".")[0])
        record.version = getattr(module, "__version__", None) or getattr(package, "__version__", None)
        _register(result, record, module)
    return result


def _load_entry_points(result: LoadResult, allow: list[str] | None) -> None:
    allowed = None if allow is None else {normalize_distribution_name(a) for a in allow}
    points = sorted(
        entry_points(group=ENTRY_POINT_GROUP),
        key=lambda ep: (ep.dist.name if ep.dist else "", ep.name),
    )
    per_dist = Counter(_dist_name(point) for point in points)
    for point in points:
        dist_name = _dist_name(point)
        if allowed is not None and dist_name not in allowed:
            continue
        # a distribution normally has one entry point and is named by itself
        name = dist_name if per_dist[dist_name] == 1 else f"{dist_name}:{point.name}"
        record = PluginRecord(
            name=name,
            source="entry point",
            version=point.dist.version if point.dist else None,
        )
        result.plugins.append(record)
        try:
            module = point.load()
        except Exception as exc:
            record.error = f"import of {point.value!r} failed: {type(exc).__name__}: {exc}"
            continue
        _register(result, record, module)
    seen = set(per_dist)
    if allowed:
        for missing in sorted(allowed - seen):
            result.problems.append(
                f"OVERTONE_LOAD_PLUGINS names {missing!r}, but no installed distribution "
                f"provides an 'overtone' entry point by that name"
            )
