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
        self.plugins = {key: _plugin_of(registry, e["name"]) for key, e in self.entries.items()}
        self.callables: dict[str, Any] = {}
        for key, entry in self.entries.items():
            try:
                analyzer = registry.get("analyzer", entry["name"]).create(**self.params(entry))
            except Exception as exc:
                self.fail(key, 0, f"its factory raised {type(exc).__name__}: {exc}")
                continue
            if callable(analyzer):
                self.callables[key] = analyzer
            else:
                self.fail(key, 0, f"its factory returned {_describe(analyzer)}; expected a callable "
                                  f"(xr.Dataset) -> xr.Dataset")

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
        import xarray as xr

        from overtone_torch.probes import complete_steps

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
            try:
                result = self.callables[name](data)
            except Exception as exc:  # third-party code: never lose the training run to it
                self.fail(name, step, str(exc) if isinstance(exc, OvertoneError) else f"{type(exc).__name__}: {exc}")
                continue
            if not isinstance(result, xr.Dataset):
                self.fail(name, step, f"returned {_describe(result)}; expected an xarray.Dataset")
                continue
            ran[name] = result
        if ran:
            self.write(ran, step)

    def fail(self, name: str, step: int, detail: str) -> None:
        """Record (and warn about) analyzer ``name``'s failure at ``step`` as one line."""
        self.results.pop(name, None)
        self.failures[name] = f"analyzer {name!r}{self.plugins.get(name, '')} failed at step {step}: {detail}"
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
                    self.fail(name, step, f"returned a Dataset that netCDF cannot hold ({problem})")
                    del ran[name]
            if ran:
                write_groups(self.run_dir / "analysis.nc", ran)
        self.results.update(ran)


def _plugin_of(registry: Any, name: str) -> str:
    """`` (plugin 'overtone-dynamics')`` for an analyzer's name, empty when the registry cannot say."""
    try:
        return f" (plugin {registry.entry('analyzer', name).plugin!r})"
    except (LookupError, AttributeError):
        return ""


def _describe(value: Any) -> str:
    """``a dict``, ``a DataArray``, ``None``: what an analyzer returned, in a few words."""
    return "None" if value is None else f"a {type(value).__name__}"


def _unwritable(result: Any) -> str:
    """Why ``result`` cannot be written as a netCDF group (empty when it can)."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        try:
            result.to_netcdf(Path(folder) / "check.nc", engine="h5netcdf")
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"
    return ""
