"""The ``[[analyzers]]`` of a run: which are due, their latest results, analysis.nc."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from overtone import OvertoneError
from overtone.pipeline import Step, apply_step

from overtone_torch import schema


class Analyses:
    """The ``[[analyzers]]`` of a run: due steps, the latest result of each, analysis.nc.

    Each analyzer is a registry component ``factory(**params)`` returning a callable
    ``(xr.Dataset) -> xr.Dataset``; it reads all probe steps recorded so far (or the
    metrics). Results are keyed (and grouped in analysis.nc) by the analyzer's name, or
    ``<name>-<k>`` for the k-th of several entries with the same name. An analyzer that
    raises does not stop training: its message is kept in :attr:`failures` (shown in the
    report, raised as :class:`AnalyzerFailed` at the end); so is one that returns anything but
    an ``xr.Dataset``.
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
        self.results: dict[str, Any] = {}
        self.failures: dict[str, str] = {}
        self.nan_warned: set[str] = set()
        self.steps: dict[str, Step] = {}
        for key, entry in self.entries.items():
            found = registry.entry("analyzer", entry["name"])
            self.steps[key] = step = Step(entry["name"], found.component, self.params(entry),
                                          plugin=found.plugin)
            try:
                step.build("analyzer")
            except OvertoneError as exc:
                self.fail(key, 0, exc)

    @staticmethod
    def params(entry: Mapping[str, Any]) -> dict[str, Any]:
        """The analyzer's own parameters (without the engine's ``every`` and ``input``)."""
        return {k: v for k, v in entry.items() if k not in ("name", *schema.ANALYZER_KEYS)}

    def due(self, step: int) -> bool:
        """Whether any analyzer runs during training at ``step``."""
        return any(e["every"] and step % e["every"] == 0 for e in self.entries.values())

    def run(self, step: int, probes: Any, metrics: Any, *, final: bool = False) -> None:
        """Run the analyzers due at ``step`` (all of them when ``final``) and update analysis.nc.

        An analyzer that raises, or returns anything but an ``xr.Dataset`` (or one netCDF cannot
        hold), is recorded in :attr:`failures` as one line and skipped from then on; the
        other analyzers' results are kept and written.
        """
        from overtone.runschema import complete_steps

        ran: dict[str, Any] = {}
        for name, entry in self.entries.items():
            if name in self.failures or not (final or (entry["every"] and step % entry["every"] == 0)):
                continue
            if entry["input"] == "metrics":
                data = metrics
            else:
                data = None if probes is None else complete_steps(probes, entry.get("variable"))
                if data is None or not data.sizes["step"]:
                    continue
            try:  # third-party code: never lose the training run to it
                ran[name] = apply_step(self.steps[name], data, "analyzer")
            except OvertoneError as exc:
                self.fail(name, step, exc)
                continue
            self.warn_if_nan(name, ran[name], step)
        if ran:
            self.write(ran, step)

    def warn_if_nan(self, name: str, result: Any, step: int) -> None:
        """Warn once per analyzer when a result variable is NaN everywhere (it is still kept)."""
        from overtone.analysis import all_nan_variables

        empty = all_nan_variables(result)
        if empty and name not in self.nan_warned:
            self.nan_warned.add(name)
            names = ", ".join(repr(v) for v in empty)
            print(f"overtone: warning: analyzer {self.steps[name].label} at step {step}: result variable"
                  f"{'s' * (len(empty) > 1)} {names} {'are' if len(empty) > 1 else 'is'} NaN everywhere "
                  f"(written as it is); check the analyzer and the data it reads", file=sys.stderr)

    def fail(self, name: str, step: int, problem: Any) -> None:
        """Record (and warn about) analyzer ``name``'s failure at ``step`` as one line."""
        self.results.pop(name, None)
        detail = " ".join(str(problem).split())
        label = f"analyzer {self.steps[name].label}" if name in self.steps else f"analyzer {name!r}"
        detail = detail[len(label):].lstrip(" :") if detail.startswith(label) else detail
        where = label.replace(repr(self.steps[name].name), repr(name), 1) if name in self.steps else label
        self.failures[name] = f"{where} failed at step {step}: {detail}"
        print(f"overtone: warning: {self.failures[name]}", file=sys.stderr)

    def write(self, ran: dict[str, Any], step: int) -> None:
        """Add ``ran``'s results to analysis.nc; a result netCDF cannot hold is a failure of its own."""
        from overtone.io import write_groups

        try:
            write_groups(self.run_dir / "analysis.nc", ran)
        except Exception:  # find which result cannot be written, and write the others
            for name in list(ran):
                problem = _unwritable(ran[name])
                if problem:
                    self.fail(name, step, f"returned a Dataset that netCDF cannot hold ({problem}); "
                                          f"expected one writable to netCDF")
                    del ran[name]
            if ran:
                write_groups(self.run_dir / "analysis.nc", ran)
        self.results.update(ran)


def _unwritable(result: Any) -> str:
    """Why ``result`` cannot be written as a netCDF group (empty when it can)."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        try:
            result.to_netcdf(Path(folder) / "check.nc", engine="h5netcdf")
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"
    return ""
