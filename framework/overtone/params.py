"""Declared parameters of components and their validation against user-given values.

A :class:`Param` is the one declaration of a parameter: its default, type, bounds, allowed
values and help text. Config validation, ``--param`` overrides, ``Component.create()``,
``overtone plugins --verbose`` and ``check_plugin`` all read it.
"""

from __future__ import annotations

import difflib
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from overtone.errors import ConfigError

_ListTypes = (list, tuple)


def _as_number_hint(bound: Any) -> str:
    """``bound`` written as the number it was probably meant to be, for an error message."""
    try:
        return repr(float(bound))
    except (TypeError, ValueError):
        return "0.0"


@dataclass(frozen=True)
class Param:
    """A documented parameter: default, type, bounds, allowed values, help text.

    A plain value in ``Component.params`` means ``Param(default=value)``. The type is taken
    from the default unless given; ``default=None`` with no type accepts any value, and a
    ``None`` default is always accepted as "not set". ``required=True`` means the user must
    give it.

    ``min`` / ``max`` are inclusive bounds (``min <= value <= max``) unless ``exclusive_min`` /
    ``exclusive_max`` make that side strict (``min < value``, ``value < max``); on a list
    parameter they bound each element. ``items`` makes the parameter a list and gives its element type
    (``items=float``) or, for nested lists, the element's own ``Param``
    (``items=Param(type=list, items=float, length=2)`` is a list of ``[lo, hi]`` pairs).
    ``length`` fixes the number of elements of a list.
    """

    default: Any = None
    help: str = ""
    choices: tuple[Any, ...] | None = None
    type: type | tuple[type, ...] | None = None
    required: bool = False
    min: float | None = None
    max: float | None = None
    items: type | tuple[type, ...] | Param | None = None
    length: int | None = None
    exclusive_min: bool = False
    exclusive_max: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.items, Param) and (self.min is not None or self.max is not None):
            raise ValueError("Param: put min/max on the element Param given as items=, not on the list")
        for side, bound, exclusive in (("min", self.min, self.exclusive_min),
                                       ("max", self.max, self.exclusive_max)):
            if bound is not None and (isinstance(bound, bool) or not isinstance(bound, numbers.Real)):
                raise ValueError(f"Param: {side}={bound!r} is a {type(bound).__name__}; a bound must "
                                 f"be a number ({side}={_as_number_hint(bound)})")
            if exclusive and bound is None:
                raise ValueError(f"Param: exclusive_{side}=True needs {side}=")
        if self.min is not None and self.max is not None:
            if self.min > self.max:
                raise ValueError(f"Param: min {self.min!r} is greater than max {self.max!r}")
            if self.min == self.max and (self.exclusive_min or self.exclusive_max):
                raise ValueError(f"Param: an exclusive bound at min = max = {self.min!r} allows no value")

    @property
    def is_list(self) -> bool:
        """Whether the value is a list (``items`` or ``length`` given, or a list default)."""
        if self.items is not None or self.length is not None:
            return True
        types = self.expected_types()
        return types is not None and set(types) <= {list, tuple}

    def expected_types(self) -> tuple[type, ...] | None:
        """The accepted Python types (``float`` also accepts ``int``), or ``None`` for any."""
        if self.type is not None:
            types = self.type if isinstance(self.type, tuple) else (self.type,)
            if float in types and int not in types:
                types = (*types, int)
            if list in types and tuple not in types:
                types = (*types, tuple)
            return types
        if self.items is not None or self.length is not None:
            return _ListTypes
        return _types_of(self.default)

    def element(self) -> Param:
        """The Param each element of a list parameter is checked against."""
        if isinstance(self.items, Param):
            return self.items
        bounds = {"min": self.min, "max": self.max,
                  "exclusive_min": self.exclusive_min, "exclusive_max": self.exclusive_max}
        if self.items is not None:
            return Param(type=self.items, **bounds)
        if isinstance(self.default, _ListTypes) and self.default:
            first = self.default[0]
            if not isinstance(first, _ListTypes):
                return Param(type=_types_of(first), **bounds)
        return Param(**bounds)

    def describe_type(self) -> str:
        """The expected type in words: ``int``, ``float``, ``list of float``, ``list of 2 ...``."""
        if self.is_list:
            count = f"{self.length} " if self.length is not None else ""
            inner = self.element().describe_type()
            return f"list of {count}{inner}" if inner != "any" else f"list{f' of {count}values' if count else ''}"
        types = self.expected_types()
        return "any" if types is None else _type_names(types)

    def describe_range(self, key: str = "value") -> str | None:
        """The bounds as text (``0 <= lr``, ``0 < sigma``, ``0 <= dropout < 1``), or ``None``."""
        param = self.element() if self.is_list else self
        if param.min is None and param.max is None:
            return None
        name = f"each element of {key}" if self.is_list else key
        low = f"{param.min!r} {'<' if param.exclusive_min else '<='} " if param.min is not None else ""
        high = f" {'<' if param.exclusive_max else '<='} {param.max!r}" if param.max is not None else ""
        return f"{low}{name}{high}"


def _types_of(default: Any) -> tuple[type, ...] | None:
    if default is None:
        return None
    if isinstance(default, bool):
        return (bool,)
    if isinstance(default, int):
        return (int,)
    if isinstance(default, float):
        return (float, int)
    if isinstance(default, _ListTypes):
        return _ListTypes
    return (type(default),)


def as_param(spec: Any) -> Param:
    """Treat a plain default value as a :class:`Param`."""
    return spec if isinstance(spec, Param) else Param(default=spec)


def _type_names(types: tuple[type, ...]) -> str:
    names = {"float": "float", "int": "int", "list": "list", "tuple": "list"}
    if float in types:
        types = tuple(t for t in types if t is not int)
    return " or ".join(dict.fromkeys(names.get(t.__name__, t.__name__) for t in types))


def check_value(key: str, value: Any, param: Param, where: str) -> Any:
    """Return ``value`` checked against ``param``.

    An int is widened to float where a float is due (a float default or ``type=float``), but
    kept where ``type=`` names ``int`` too.

    Checks, in order: type (lists element by element), choices, bounds, list length. Raises
    :class:`ConfigError` with one line naming ``where``, the key, the value and what is allowed.
    """
    if value is None and param.default is None and not param.required:
        return None
    types = param.expected_types()
    if types is not None:
        is_bool = isinstance(value, bool)
        ok = isinstance(value, types) and (not is_bool or bool in types)
        if not ok:
            if param.is_list and not isinstance(value, _ListTypes):
                example = f" like the default {list(param.default)!r}" if param.default else ""
                raise ConfigError(
                    f"{where}: {key} = {value!r} is a single {type(value).__name__}; expected a "
                    f"{param.describe_type()}, written in brackets{example}"
                )
            raise ConfigError(
                f"{where}: {key} = {value!r} has type {type(value).__name__}; "
                f"expected {param.describe_type()}"
            )
        if float in types and not is_bool and isinstance(value, int) and not _int_declared(param):
            value = float(value)
    if param.choices is not None and value not in param.choices:
        allowed = ", ".join(repr(c) for c in param.choices)
        raise ConfigError(f"{where}: {key} = {value!r} is not allowed; allowed values: {allowed}")
    if param.is_list:
        if param.length is not None and len(value) != param.length:
            raise ConfigError(
                f"{where}: {key} = {value!r} has {len(value)} element(s); expected {param.length}"
            )
        element = param.element()
        checked = [check_value(f"{key}[{i}]", item, element, where) for i, item in enumerate(value)]
        return type(value)(checked) if isinstance(value, tuple) else checked
    _check_bounds(key, value, param, where)
    return value


def _int_declared(param: Param) -> bool:
    """Whether ``type=`` names ``int`` itself (then ints are kept, not widened to float)."""
    declared = param.type if isinstance(param.type, tuple) else (param.type,)
    return int in declared


def _check_bounds(key: str, value: Any, param: Param, where: str) -> None:
    if param.min is None and param.max is None:
        return
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise ConfigError(f"{where}: {key} = {value!r} is not a number; expected "
                          f"{param.describe_range(key)}")
    too_low = param.min is not None and not (
        value > param.min if param.exclusive_min else value >= param.min)
    too_high = param.max is not None and not (
        value < param.max if param.exclusive_max else value <= param.max)
    if too_low:
        problem = f"must be above {param.min!r}" if param.exclusive_min else f"is below the minimum {param.min!r}"
    elif too_high:
        problem = f"must be below {param.max!r}" if param.exclusive_max else f"is above the maximum {param.max!r}"
    else:
        return
    raise ConfigError(f"{where}: {key} = {value!r} {problem}; allowed: {param.describe_range(key)}")


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
    """A JSON-friendly description of a parameter spec (used by ``overtone plugins``).

    Each entry has ``default`` and, where declared, ``required``, ``choices``, ``type``
    (``"list of float"``), ``min``, ``max``, ``exclusive_min`` / ``exclusive_max`` (when true),
    ``length``, ``range`` (the bounds as text) and ``help``.
    """
    described = {}
    for key, raw_spec in spec.items():
        param = as_param(raw_spec)
        item: dict[str, Any] = {"default": param.default}
        if param.required:
            item["required"] = True
        if param.choices is not None:
            item["choices"] = list(param.choices)
        if param.type is not None or param.items is not None:
            item["type"] = param.describe_type()
        bounded = param.element() if param.is_list else param
        if bounded.min is not None:
            item["min"] = bounded.min
        if bounded.max is not None:
            item["max"] = bounded.max
        if bounded.exclusive_min:
            item["exclusive_min"] = True
        if bounded.exclusive_max:
            item["exclusive_max"] = True
        if param.length is not None:
            item["length"] = param.length
        bounds = param.describe_range(key)
        if bounds:
            item["range"] = bounds
        if param.help:
            item["help"] = param.help
        described[key] = item
    return described


def format_param(key: str, info: Mapping[str, Any]) -> str:
    """One line of ``overtone plugins --verbose``: ``key = default  range: ...  choices: ...  help``."""
    parts = [f"{key} = {info['default']!r}"]
    if "range" in info:
        parts.append(f"range: {info['range']}")
    if "choices" in info:
        parts.append(f"choices: {info['choices']}")
    if "help" in info:
        parts.append(info["help"])
    return "  ".join(parts)
