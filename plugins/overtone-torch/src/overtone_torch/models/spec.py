"""Checks of the ``input_spec`` a task hands to a model (see ``overtone_torch.task_api``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from overtone import ConfigError

REQUIRED = {"tokens": ("vocab_size", "seq_len"), "vector": ("dim",)}


def check_input_spec(model: str, spec: Mapping[str, Any], kinds: tuple[str, ...],
                     outputs: tuple[str, ...], instead: str) -> tuple[str, str]:
    """Return ``(kind, output)`` of ``spec`` or raise ConfigError if ``model`` cannot take it.

    ``instead`` names the model to suggest in the error.
    """
    kind, output = spec.get("kind"), spec.get("output", "pooled")
    if kind not in kinds:
        raise ConfigError(f"[model] {model} cannot take inputs of kind {kind!r} (it takes "
                          f"{' or '.join(repr(k) for k in kinds)}); use name = {instead!r}")
    if output not in outputs:
        raise ConfigError(f"[model] {model} cannot give output {output!r} (it gives "
                          f"{' or '.join(repr(o) for o in outputs)}); use name = {instead!r}")
    missing = [k for k in REQUIRED[kind] if not isinstance(spec.get(k), int) or spec[k] < 1]
    if missing:
        raise ConfigError(f"[model] {model}: the task's input_spec lacks positive integer {', '.join(missing)}")
    return kind, output
