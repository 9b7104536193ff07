"""overtone: a plugin framework for the physics of learning and for radio-spectrum processing.

The core is torch-free. Plugins register components through the ``overtone`` entry-point group.
The library API (``overtone.run``, ``overtone.process``, ``overtone.analyze``) is imported on
first use, so ``import overtone`` stays light (no xarray, no torch).
"""

from typing import Any

from overtone.component import KINDS, Component
from overtone.errors import (
    ComponentUnavailableError,
    ConfigError,
    DatasetError,
    DuplicateComponentError,
    OvertoneError,
    PluginError,
    UnknownComponentError,
)
from overtone.hookspecs import hookimpl
from overtone.params import Param
from overtone.registry import Registry, get, registry

__version__ = "0.1.0"

__all__ = [
    "KINDS",
    "Component",
    "ComponentUnavailableError",
    "ConfigError",
    "DatasetError",
    "DuplicateComponentError",
    "OvertoneError",
    "Param",
    "PluginError",
    "Registry",
    "UnknownComponentError",
    "__version__",
    "analyze",
    "get",
    "hookimpl",
    "process",
    "registry",
    "run",
]

_LAZY = {
    "run": ("overtone.runs", "run_experiment"),
    "process": ("overtone.processing", "process"),
    "analyze": ("overtone.analysis", "analyze"),
}


def __getattr__(name: str) -> Any:
    """Import the library API on first use: ``overtone.process`` loads ``overtone.processing``."""
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'overtone' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
