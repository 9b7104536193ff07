"""Plugin loading: the ``overtone`` entry-point group plus modules named in the environment.

Each entry point is loaded on its own inside ``try``/``except``, so one broken plugin is
reported by name and the others still work (pluggy's own loader stops at the first failure).

Environment:

- ``OVERTONE_PLUGINS``: comma-separated importable modules to load as plugins as well.
- ``OVERTONE_LOAD_PLUGINS``: comma-separated distribution names; only these entry points are
  loaded. Set but empty means no entry-point plugin is loaded.
- ``OVERTONE_DEBUG``: when set (``overtone --debug`` sets it), the full traceback of a plugin
  that failed to import is printed to stderr; otherwise the failure is one line naming the
  file and line where it happened.
"""

from __future__ import annotations

import difflib
import importlib
import os
import re
import sys
import traceback
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType

import pluggy

from overtone import hookspecs
from overtone.component import KINDS

ENTRY_POINT_GROUP = "overtone"
_IMPORTLIB = os.path.dirname(importlib.__file__)


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
    traceback: str | None = None

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


def _location(function: object) -> str:
    """``file.py:LINE`` where a function is defined, or ``""`` when unknown."""
    code = getattr(function, "__code__", None)
    return f"{code.co_filename}:{code.co_firstlineno}" if code is not None else ""


def _failure_location(exc: BaseException) -> str:
    """``file.py:LINE`` of the innermost frame of a failed import outside importlib itself."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{exc.filename}:{exc.lineno}"
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not f.filename.startswith("<") and f.filename != __file__
              and not f.filename.startswith(_IMPORTLIB)]
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else ""


def _import_failure(record: PluginRecord, what: str, exc: BaseException, env: Mapping[str, str]) -> None:
    """Record a failed import as one line; print the traceback when ``OVERTONE_DEBUG`` is set."""
    where = _failure_location(exc)
    record.error = f"{what} failed: {type(exc).__name__}: {exc}" + (f" (at {where})" if where else "")
    record.traceback = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    if env.get("OVERTONE_DEBUG"):
        print(f"overtone: plugin {record.name!r} failed to import:\n{record.traceback}",
              file=sys.stderr, end="")


def _unmarked_hooks(manager: pluggy.PluginManager, module: ModuleType) -> list[str]:
    """Warnings for ``overtone_*`` functions that overtone will not call (no ``@hookimpl``)."""
    hook_names = list(KINDS.values())
    found = []
    for attr in sorted(vars(module)):
        function = getattr(module, attr)
        if not attr.startswith("overtone_") or not callable(function):
            continue
        if manager.parse_hookimpl_opts(module, attr) is not None:
            continue
        if getattr(function, "__module__", module.__name__) != module.__name__:
            continue  # imported from elsewhere
        where = _location(function)
        at = f" ({where})" if where else ""
        if attr in hook_names:
            found.append(f"{attr}(){at} has no @overtone.hookimpl decorator, so overtone never "
                         f"calls it; decorate it with @hookimpl")
        else:
            close = difflib.get_close_matches(attr, hook_names, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            found.append(f"{attr}(){at} is not an overtone hook and has no @hookimpl{hint}")
    return found


def _one_line(text: str) -> str:
    return "; ".join(line.strip() for line in str(text).splitlines() if line.strip())


def _register(result: LoadResult, record: PluginRecord, module: ModuleType) -> None:
    manager = result.manager
    if manager.is_registered(module):  # e.g. installed and also named in OVERTONE_PLUGINS
        result.plugins.remove(record)
        return
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
        record.error = f"invalid hook implementation: {_explain_invalid(exc, module, manager)}"
        return
    record.module = module
    result.problems.extend(f"plugin {record.name!r}: {line}" for line in _unmarked_hooks(manager, module))


def _explain_invalid(exc: Exception, module: ModuleType, manager: pluggy.PluginManager) -> str:
    """pluggy's whole message on one line, with the file and line of the hook and a hint."""
    message = _one_line(str(exc))
    hook_names = list(KINDS.values())
    for attr in sorted(vars(module)):
        if attr.startswith("overtone_") and f"'{attr}'" in message:
            where = _location(getattr(module, attr))
            if where:
                message += f" (at {where})"
            if attr not in hook_names:
                close = difflib.get_close_matches(attr, hook_names, n=1)
                message += f"; did you mean {close[0]}?" if close else ""
            elif "hookimpl definition" in message:
                message += "; overtone hooks take no arguments"
            break
    return message


def register_module(result: LoadResult, module: ModuleType, *, name: str | None = None,
                    source: str = "module") -> PluginRecord:
    """Register an imported plugin module with a loaded manager; failures go on the record."""
    record = PluginRecord(name=name or module.__name__, source=source)
    result.plugins.append(record)
    package = sys.modules.get(module.__name__.partition(".")[0])
    record.version = getattr(module, "__version__", None) or getattr(package, "__version__", None)
    _register(result, record, module)
    return record


def new_manager() -> LoadResult:
    """An empty plugin manager that knows overtone's hooks."""
    manager = pluggy.PluginManager(ENTRY_POINT_GROUP)
    manager.add_hookspecs(hookspecs)
    return LoadResult(manager)


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

    result = new_manager()

    if use_entry_points:
        _load_entry_points(result, allow, env)

    for module_name in modules:
        record = PluginRecord(name=module_name, source="OVERTONE_PLUGINS")
        result.plugins.append(record)
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            if isinstance(exc, ModuleNotFoundError) and _is_missing(exc, module_name):
                record.error = (f"OVERTONE_PLUGINS names {module_name!r}, which is not importable "
                                f"({exc}); the module must be on PYTHONPATH or installed")
                continue
            _import_failure(record, "import", exc, env)
            continue
        package = sys.modules.get(module_name.partition(".")[0])
        record.version = getattr(module, "__version__", None) or getattr(package, "__version__", None)
        _register(result, record, module)
    return result


def _is_missing(exc: ModuleNotFoundError, module_name: str) -> bool:
    """Whether the named module itself (or a parent package) is absent, not one of its imports."""
    return bool(exc.name) and (module_name == exc.name or module_name.startswith(exc.name + "."))


def _load_entry_points(result: LoadResult, allow: list[str] | None, env: Mapping[str, str]) -> None:
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
            _import_failure(record, f"import of {point.value!r}", exc, env)
            continue
        _register(result, record, module)
    seen = set(per_dist)
    if allowed:
        for missing in sorted(allowed - seen):
            result.problems.append(
                f"OVERTONE_LOAD_PLUGINS names {missing!r}, but no installed distribution "
                f"provides an 'overtone' entry point by that name"
            )
