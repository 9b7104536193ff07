"""A contract check any plugin's own test suite can run: ``check_plugin(module)``."""

from __future__ import annotations

from types import ModuleType

from overtone.component import KINDS, Component
from overtone.errors import PluginError
from overtone.params import as_param


def check_plugin(module: ModuleType, *, load_factories: bool = True) -> list[Component]:
    """Check that a plugin module honours the overtone contract; return its components.

    Every hook implementation must return Components of its own kind with unique names,
    each ``Param`` default must satisfy its own type and choices, and (with
    ``load_factories``) every lazy factory must import to a callable.
    Raises :class:`overtone.PluginError` describing the first problem found.
    """
    import pluggy

    from overtone import hookspecs
    from overtone.params import check_value
    from overtone.plugins import LoadResult, PluginRecord, _register
    from overtone.registry import Registry

    manager = pluggy.PluginManager("overtone")
    manager.add_hookspecs(hookspecs)
    loaded = LoadResult(manager)
    record = PluginRecord(name=module.__name__, source="check_plugin")
    loaded.plugins.append(record)
    _register(loaded, record, module)
    if record.error:
        raise PluginError(f"{module.__name__}: {record.error}")
    registry = Registry(loaded)
    if registry.problems:
        raise PluginError("; ".join(registry.problems))
    if not len(registry):
        raise PluginError(f"{module.__name__}: registers no component; implement one of "
                          f"{', '.join(KINDS.values())}")
    if registry.duplicates():
        raise PluginError(f"{module.__name__}: registers a name twice: {list(registry.duplicates())}")
    components = [entry.component for entry in registry]
    for component in components:
        for key, spec in component.params.items():
            param = as_param(spec)
            if param.default is not None and not param.required:
                try:
                    check_value(key, param.default, param, f"{component.kind} {component.name!r}")
                except Exception as exc:
                    raise PluginError(f"default of parameter {key!r} fails its own check: {exc}") from exc
        if load_factories and not callable(component.load()):
            raise PluginError(f"{component.kind} {component.name!r}: factory is not callable")
    return components
