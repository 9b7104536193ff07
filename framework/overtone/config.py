"""Experiment configs: TOML files, ``--set`` overrides, and resolution of component sections."""

from __future__ import annotations

import copy
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from overtone.component import Component
from overtone.errors import ConfigError
from overtone.params import resolve_params

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a TOML config file, with errors that name the file and the line."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {str(path)!r} not found; check the path")
    if path.is_dir():
        raise ConfigError(f"{str(path)!r} is a directory; give a .toml config file")
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a UTF-8 text file ({exc})") from exc


def parse_value(text: str) -> Any:
    """Parse an override value as a TOML value (``3``, ``1e-3``, ``true``, ``[1, 2]``), else a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_assignment(text: str, option: str = "--set") -> tuple[str, Any]:
    """Split ``key=value`` into the key and its parsed value."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"{option} {text!r}: expected KEY=VALUE, e.g. {option} train.steps=500")
    return key.strip(), parse_value(value.strip())


def apply_overrides(config: Mapping[str, Any], assignments: list[str]) -> dict[str, Any]:
    """Return a copy of ``config`` with dotted ``section.key=value`` overrides applied."""
    result = copy.deepcopy(dict(config))
    for text in assignments:
        key, value = parse_assignment(text)
        *parents, leaf = key.split(".")
        node = result
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {text!r}: {part!r} is a value, not a section")
            node = child
        node[leaf] = value
    return result


def resolve_component(
    registry: Any,
    kind: str,
    section: Mapping[str, Any] | None,
    where: str,
    *,
    default: str | None = None,
    fixed: tuple[str, ...] = (),
) -> tuple[Component, dict[str, Any]]:
    """Resolve a config section naming a component: ``{name = "mlp", width = 128}``.

    Returns the component and its validated parameters (defaults filled, ``name`` included).
    ``fixed`` lists parameters that the engine supplies itself and a user must not set.
    """
    section = dict(section or {})
    name = section.get("name", default)
    if name is None:
        raise ConfigError(f"{where}: missing key 'name'; choose one of: "
                          f"{', '.join(registry.names(kind)) or '(none installed)'}")
    if not isinstance(name, str):
        raise ConfigError(f"{where}: name = {name!r} must be a string")
    try:
        component = registry.get(kind, name)
    except LookupError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    for key in fixed:
        if key in section:
            raise ConfigError(f"{where}: {key!r} is set by the engine and cannot be configured")
    spec = {k: v for k, v in component.params.items() if k not in fixed}
    params = resolve_params(section, spec, f"{where} ({kind} {name!r})", ignore=("name",))
    return component, {"name": name, **params}


def check_sections(config: Mapping[str, Any], allowed: Mapping[str, str], source: str) -> None:
    """Reject top-level sections that are not in ``allowed`` (section -> what it is for)."""
    for key in config:
        if key not in allowed:
            import difflib

            close = difflib.get_close_matches(key, list(allowed), n=1)
            hint = f" (did you mean [{close[0]}]?)" if close else ""
            raise ConfigError(
                f"{source}: unknown section [{key}]; allowed sections: "
                f"{', '.join(allowed)}{hint}"
            )


def dump_toml(config: Mapping[str, Any]) -> str:
    """Serialise a config to TOML; ``None`` values are dropped (TOML has no null)."""
    import tomli_w

    def strip(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: strip(v) for k, v in value.items() if v is not None}
        if isinstance(value, (list, tuple)):
            return [strip(v) for v in value if v is not None]
        return value

    return tomli_w.dumps(strip(config))
