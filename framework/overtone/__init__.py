"""overtone: a plugin framework for the physics of learning and for radio-spectrum processing.

The core is torch-free. Plugins register components through the ``overtone`` entry-point group.
"""

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
    "get",
    "hookimpl",
    "registry",
]
