"""The registration object every hook returns, and lazy resolution of its factory."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from overtone.errors import ComponentUnavailableError

#: Component kinds, each with the hook that registers it.
KINDS: dict[str, str] = {
    "loss": "overtone_losses",
    "optimizer": "overtone_optimizers",
    "model": "overtone_models",
    "analyzer": "overtone_analyzers",
    "signal_processor": "overtone_signal_processors",
    "task": "overtone_tasks",
    "engine": "overtone_engines",
    "reader": "overtone_readers",
}


@dataclass(frozen=True)
class Component:
    """One registered implementation: a kind, a short name and a factory.

    ``factory`` is a callable or a lazy ``"module:attr"`` reference, imported only by
    :meth:`load`, so listing components never imports heavy dependencies such as torch.
    ``params`` documents accepted keyword parameters and their defaults; config validation
    uses it to reject unknown keys and wrong types. ``suffixes`` is used by readers only:
    the file-name endings (``".fits"``) the reader opens.
    """

    kind: str
    name: str
    factory: str | Callable[..., Any]
    summary: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)
    suffixes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(
                f"Component kind {self.kind!r} is not one of: {', '.join(KINDS)}"
            )
        if not self.name or not isinstance(self.name, str):
            raise ValueError(f"Component name must be a non-empty string, got {self.name!r}")
        if isinstance(self.factory, str) and ":" not in self.factory:
            raise ValueError(
                f"Component {self.kind} {self.name!r}: factory {self.factory!r} must be "
                "a callable or a 'module:attr' string"
            )
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))
        object.__setattr__(self, "suffixes", tuple(s.lower() for s in self.suffixes))

    def load(self) -> Callable[..., Any]:
        """Return the factory callable, importing its module on first use."""
        if callable(self.factory):
            return self.factory
        module_name, _, attr = self.factory.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ComponentUnavailableError(
                f"{self.kind} {self.name!r} cannot be used: importing {module_name!r} failed "
                f"({exc}); install the plugin's dependencies"
            ) from exc
        try:
            target = module
            for part in attr.split("."):
                target = getattr(target, part)
        except AttributeError as exc:
            raise ComponentUnavailableError(
                f"{self.kind} {self.name!r} cannot be used: {module_name!r} has no "
                f"attribute {attr!r}; the plugin's registration is wrong"
            ) from exc
        return target

    def create(self, *args: Any, **params: Any) -> Any:
        """Load the factory and call it: ``factory(*args, **params)``."""
        return self.load()(*args, **params)
