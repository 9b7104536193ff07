"""Declared parameters of components and their validation against user-given values."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from overtone.errors import ConfigError


@dataclass(frozen=True)
class Param:
    """A documented parameter: default, optional allowed values, type and help text.

    A plain value in ``Component.params`` means ``Param(default=value)``. The type is taken
    from the default unless given; ``default=None`` with no type accepts any value.
    ``required=True`` means the user must give it.
    """

    default: Any = None
    help: str = ""
    choices: tuple[Any, ...] | None = None
    type: type | tuple[type, ...] | None = None
    required: bool = False

    def expected_types(self) -> tuple[type, ...] | None:
        if self.type is not None:
            return self.type if isinstance(self.type, tuple) else (self.type,)
        if self.default is None:
            return None
        if isinstance(self.default, bool):
            return (bool,)
        if isinstance(self.default, int):
            return (int,)
        if isinstance(self.default, float):
            return (float, int)
        if isinstance(self.default, (list, tuple)):
            return (list, tuple)
        return (type(self.default),)


def as_param(spec: Any) -> Param:
    """Treat a plain default value as a :class:`Param`."""
    return spec if isinstance(spec, Param) else Param(default=spec)


def _type_names(types: tuple[type, ...]) -> str:
    names = {"float": "float", "int": "int", "list": "list", "tuple": "list"}
    return " or ".join(dict.fromkeys(names.get(t.__name__, t.__name__) for t in types))


def check_value(key: str, value: Any, param: Param, where: str) -> Any:
    """Return ``value`` checked against ``param`` (ints widened to float where a float is due)."""
    types = param.expected_types()
    if types is not None:
        is_bool = isinstance(value, bool)
        ok = isinstance(value, types) and (not is_bool or bool in types)
        if not ok:
            raise ConfigError(
                f"{where}: {key} = {value!r} has type {type(value).__name__}; "
                f"expected {_type_names(types)}"
            )
        if float in types and int in types and not is_bool and isinstance(value, int):
            value = float(value)
    if param.choices is not None and value not in param.choices:
        allowed = ", ".join(repr(c) for c in param.choices)
        raise ConfigError(f"{where}: {key} = {value!r} is not allowed; allowed values: {allowed}")
    return value


def resolve_params(
    given: Mapping[str, Any],
    spec: Mapping[str, Any],
    where: str,
    *,
    ignore: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Validate ``given`` against ``spec`` and fill in defaults.

    ``where`` locates the values for error messages (``"exp.toml [model]"``). Keys in
    ``ignore`` (such as a section's ``name``) are neither checked nor returned.
    """
    resolved: dict[str, Any] = {}
    for key in given:
        if key in ignore or key in spec:
            continue
        allowed = sorted(spec)
        message = f"{where}: unknown key {key!r}"
        message += f"; allowed keys: {', '.join(allowed)}" if allowed else "; it takes no keys"
        close = difflib.get_close_matches(key, allowed, n=1)
        if close:
            message += f" (did you mean {close[0]!r}?)"
        raise ConfigError(message)
    for key, raw_spec in spec.items():
        param = as_param(raw_spec)
        if key in given:
            resolved[key] = check_value(key, given[key], param, where)
        elif param.required:
            raise ConfigError(f"{where}: missing required key {key!r}" + (
                f" ({param.help})" if param.help else ""))
        else:
            resolved[key] = param.default
    return resolved


def describe_params(spec: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """A JSON-friendly description of a parameter spec (used by ``overtone plugins``)."""
    described = {}
    for key, raw_spec in spec.items():
        param = as_param(raw_spec)
        item: dict[str, Any] = {"default": param.default}
        if param.required:
            item["required"] = True
        if param.choices is not None:
            item["choices"] = list(param.choices)
        if param.help:
            item["help"] = param.help
        described[key] = item
    return described
