"""What an engine component provides; the core only dispatches to it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Engine(Protocol):
    """An engine runs experiments from a validated config.

    ``resolve`` validates a raw config (the ``[run]`` section already resolved by the core)
    and returns it with every default filled in, raising :class:`overtone.ConfigError`
    before any work starts. ``run`` executes it in ``run_dir`` (continuing from the last
    checkpoint when ``resume`` is true). ``demo_config`` (optional) returns the config that
    ``overtone demo`` runs. ``resume_may_change`` (optional) names the config sections a
    ``--resume`` may change; ``vectorized()`` (optional) returns the pack trainer
    ``overtone sweep --vectorize`` uses, and an engine without it is refused there. The core
    checks an engine factory's product against this Protocol
    (``overtone.runs.resolve_experiment``) before calling it.
    """

    def resolve(self, config: Mapping[str, Any], *, source: str, registry: Any) -> dict[str, Any]: ...

    def run(self, config: Mapping[str, Any], run_dir: Path, *, resume: bool = False) -> None: ...
