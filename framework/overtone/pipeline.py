"""Pipelines of analyzers or signal processors over an ``xr.Dataset``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from overtone.config import parse_assignment
from overtone.errors import ConfigError, DatasetError
from overtone.params import resolve_params


@dataclass
class Step:
    """One component in a pipeline with its validated parameters."""

    name: str
    component: Any
    params: dict[str, Any] = field(default_factory=dict)


def build_steps(
    registry: Any, kind: str, names: Sequence[str], assignments: Sequence[str]
) -> list[Step]:
    """Resolve component names and ``--param`` assignments into validated steps.

    ``NAME.key=value`` sets a parameter of one step; a bare ``key=value`` sets it on every
    step that declares ``key`` (and is an error if none does).
    """
    if not names:
        raise ConfigError(f"--with: name at least one {kind.replace('_', ' ')}")
    components = [registry.get(kind, name) for name in names]
    given: list[dict[str, Any]] = [{} for _ in names]
    for text in assignments:
        key, value = parse_assignment(text, "--param")
        target, dot, leaf = key.rpartition(".")
        if dot and target in names:
            given[names.index(target)][leaf] = value
            continue
        takers = [i for i, c in enumerate(components) if key in c.params]
        if not takers:
            allowed = sorted({f"{c.name}.{p}" for c in components for p in c.params})
            raise ConfigError(
                f"--param {text!r}: no step takes {key!r}; parameters: {', '.join(allowed) or '(none)'}"
            )
        for i in takers:
            given[i][key] = value
    return [
        Step(name, c, resolve_params(g, c.params, f"--param for {c.name!r}"))
        for name, c, g in zip(names, components, given)
    ]


def run_steps(ds: Any, steps: Sequence[Step]) -> Any:
    """Apply each step's callable in order: ``ds = component.create(**params)(ds)``."""
    for step in steps:
        function = step.component.create(**step.params)
        try:
            ds = function(ds)
        except (KeyError, ValueError) as exc:
            if isinstance(exc, (ConfigError, DatasetError)):
                raise
            raise DatasetError(f"{step.name}: {exc}") from exc
    return ds


def describe(steps: Sequence[Step]) -> str:
    """A one-line record of a pipeline for the ``history`` attribute."""
    parts = []
    for step in steps:
        args = ", ".join(f"{k}={v!r}" for k, v in step.params.items())
        parts.append(f"{step.name}({args})")
    return " | ".join(parts)
