"""The ``[[analyzers]]`` of a run: which are due, their latest results, analysis.nc."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from overtone import OvertoneError

from overtone_torch import schema


class Analyses:
    """The ``[[analyzers]]`` of a run: due steps, the latest result of each, analysis.nc.

    Each analyzer is a registry component ``factory(**params)`` returning a callable
    ``(xr.Dataset) -> xr.Dataset``; it reads all probe steps recorded so far (or the
    metrics). Results are keyed (and grouped in analysis.nc) by the analyzer's name, or
    ``<name>-<k>`` for the k-th of several entries with the same name. An analyzer that
    raises does not stop training: its message is kept in :attr:`failures` (shown in the
    report, raised as :class:`AnalyzerFailed` at the end).
    """

    def __init__(self, entries: list[dict[str, Any]], registry: Any, run_dir: Path) -> None:
        self.run_dir = run_dir
        names = [e["name"] for e in entries]
        seen: dict[str, int] = {}
        self.entries: dict[str, dict[str, Any]] = {}
        for entry in entries:
            seen[entry["name"]] = seen.get(entry["name"], 0) + 1
            key = entry["name"] if names.count(entry["name"]) == 1 else f"{entry['name']}-{seen[entry['name']]}"
            self.entries[key] = entry
        self.callables = {key: registry.get("analyzer", e["name"]).create(**self.params(e))
                          for key, e in self.entries.items()}
        self.results: dict[str, Any] = {}
        self.failures: dict[str, str] = {}

    @staticmethod
    def params(entry: Mapping[str, Any]) -> dict[str, Any]:
        """The analyzer's own parameters (without the engine's ``every`` and ``input``)."""
        return {k: v for k, v in entry.items() if k not in ("name", *schema.ANALYZER_KEYS)}

    def due(self, step: int) -> bool:
        """Whether any analyzer runs during training at ``step``."""
        return any(e["every"] and step % e["every"] == 0 for e in self.entries.values())

    def run(self, step: int, probes: Any, metrics: Any, *, final: bool = False) -> None:
        """Run the analyzers due at ``step`` (all of them when ``final``) and rewrite analysis.nc."""
        from overtone.io import write_groups

        from overtone_torch.probes import complete_steps

        ran = False
        for name, entry in self.entries.items():
            if name in self.failures or not (final or (entry["every"] and step % entry["every"] == 0)):
                continue
            if entry["input"] == "metrics":
                data = metrics
            else:
                data = None if probes is None else complete_steps(probes, entry.get("variable"))
                if data is None or not data.sizes["step"]:
                    continue
            try:
                self.results[name] = self.callables[name](data)
            except Exception as exc:  # third-party code: never lose the training run to it
                detail = str(exc) if isinstance(exc, OvertoneError) else f"{type(exc).__name__}: {exc}"
                self.failures[name] = f"analyzer {name!r} failed at step {step}: {detail}"
                print(f"overtone: warning: {self.failures[name]}", file=sys.stderr)
                continue
            ran = True
        if ran:
            write_groups(self.run_dir / "analysis.nc", self.results)
