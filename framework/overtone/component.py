"""The registration object every hook returns, and lazy resolution of its factory."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from overtone.errors import ComponentUnavailableError, ConfigError

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

#: Keyword arguments the host itself passes to each kind's factory, beside the declared params
#: (see :mod:`overtone.hookspecs`). ``create()`` does not check these against ``params``.
HOST_ARGUMENTS: dict[str, tuple[str, ...]] = {
    "loss": ("d_in", "n_classes"),
    "model": ("input_spec", "d_out"),
    "task": ("seed",),
    "reader": ("chunks",),
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
        except Exception as exc:  # the plugin's own module is broken (a typo, a SyntaxError)
            from overtone.plugins import _failure_location

            where = _failure_location(exc)
            detail = " ".join(str(exc).split())
            raise ComponentUnavailableError(
                f"{self.kind} {self.name!r} cannot be used: importing {module_name!r} raised "
                f"{type(exc).__name__}: {detail}" + (f" (at {where})" if where else "")
                + "; fix the plugin's module"
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

    def where(self, section: str | None = None) -> str:
        """The prefix of this component's error messages: ``exp.toml [model] (model 'mlp')``."""
        label = f"{self.kind} {self.name!r}"
        return f"{section} ({label})" if section else label

    def create(self, *args: Any, **params: Any) -> Any:
        """Validate ``params`` as a config section is validated, then call the factory.

        Unknown keys, wrong types, values out of bounds or not among the choices raise
        :class:`overtone.ConfigError`; defaults of the declared params are filled in; the
        host's own arguments (:data:`HOST_ARGUMENTS`) and positional ``args`` pass unchecked.
        Returns ``factory(*args, **params)``.
        """
        return self.create_at(None, *args, **params)

    def create_at(self, section: str | None, *args: Any, **params: Any) -> Any:
        """:meth:`create`, with errors located at ``section`` (``"exp.toml [model]"``).

        A :class:`ConfigError` raised by the factory itself gets the same prefix
        ``<section> (<kind> '<name>'):`` as the host's own validation errors.
        """
        from overtone.params import resolve_params

        where = self.where(section)
        host = {k: params.pop(k) for k in HOST_ARGUMENTS.get(self.kind, ()) if k in params}
        resolved = resolve_params(params, self.params, where)
        factory = self.load()
        try:
            return factory(*args, **host, **resolved)
        except ConfigError as exc:
            message = str(exc)
            if message.startswith(where) or (section and message.startswith(section)):
                raise
            raise ConfigError(f"{where}: {message}") from exc
