"""``overtone.analyze``: analyzers over a run's probes or metrics, or over any dataset.

The library behind ``overtone analyze``. Each analyzer runs on its own: one that refuses the
input, raises, or returns something other than an ``xr.Dataset`` is recorded as one line and
the others' results are still written.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from overtone.errors import DatasetError, OvertoneError, PluginError
from overtone.pipeline import Step, StepSpec, apply_step, draw_plot, resolve_steps
from overtone.processing import check_output, plot_path

if TYPE_CHECKING:
    import xarray as xr

PathLike = str | os.PathLike
ANALYSIS_FILE = "analysis.nc"

#: Exit codes of ``overtone analyze`` (see :attr:`Analysis.exit_code`).
EXIT_OK, EXIT_ANALYZER_BROKE, EXIT_BAD_INPUT = 0, 1, 2


@dataclass
class Failure:
    """An analyzer that did not produce a result: ``message`` is one line naming it."""

    name: str
    plugin: str | None
    message: str
    error: OvertoneError

    @property
    def broke_contract(self) -> bool:
        """True when the analyzer raised an unexpected exception or returned a non-Dataset
        (a plugin defect), False when it refused the input with its own error."""
        return isinstance(self.error, PluginError)


@dataclass
class Analysis:
    """What :func:`analyze` did: results and failures by analyzer, files and plots written."""

    results: dict[str, xr.Dataset] = field(default_factory=dict)
    failures: dict[str, Failure] = field(default_factory=dict)
    written: dict[str, tuple[Path, str | None]] = field(default_factory=dict)
    plots: dict[str, Path] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every analyzer produced a result."""
        return not self.failures

    @property
    def exit_code(self) -> int:
        """0 when all succeeded; 1 when an analyzer raised an unexpected exception or returned
        something other than a Dataset; 2 when analyzers only refused their input."""
        if not self.failures:
            return EXIT_OK
        if any(f.broke_contract for f in self.failures.values()):
            return EXIT_ANALYZER_BROKE
        return EXIT_BAD_INPUT


def _keys(steps: Sequence[Step]) -> list[str]:
    """Result names: the analyzer's name, ``<name>-<k>`` for the k-th of several with one name."""
    names = [s.name for s in steps]
    seen: dict[str, int] = {}
    keys = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        keys.append(name if names.count(name) == 1 else f"{name}-{seen[name]}")
    return keys


def _groups_in(path: Path) -> set[str]:
    if not path.exists():
        return set()
    import h5netcdf

    try:
        with h5netcdf.File(path, "r") as f:
            return set(f.groups)
    except Exception as exc:
        raise DatasetError(f"cannot read {str(path)!r} as a netCDF4/HDF5 file "
                           f"({type(exc).__name__}: {exc}); move it away to start a new one") from exc


def _targets(keys: list[str], source: Path | None, run_dir: bool, output: PathLike | None,
             data_file: Path | None, overwrite: bool) -> dict[str, tuple[Path, str | None]]:
    """Where each result goes: ``output`` (``<stem>.<key><suffix>`` for several), a group of
    ``RUN_DIR/analysis.nc``, or ``<file stem>.<key>.nc`` beside a file. A file target must not
    be the input (:func:`overtone.processing.check_output`); existing files or groups are
    refused unless ``overwrite``."""
    several = len(keys) > 1
    targets: dict[str, tuple[Path, str | None]] = {}
    for key in keys:
        if output is not None:
            targets[key] = (plot_path(output, key, several), None)
        elif run_dir:
            targets[key] = (source / ANALYSIS_FILE, key)
        elif source is not None:
            targets[key] = (source.with_name(f"{source.stem}.{key}.nc"), None)
    inputs = [data_file] if data_file is not None else []
    for path, group in targets.values():
        if group is None:
            check_output(path, inputs, overwrite=overwrite)
        elif not overwrite and group in _groups_in(path):
            raise OvertoneError(f"{str(path)!r} already holds a group {group!r}; pass --overwrite "
                                f"(overwrite=True) to replace it")
    return targets


def _failure(step: Step, error: OvertoneError) -> Failure:
    message = str(error)
    if (not isinstance(error, PluginError) and not message.startswith(f"{step.name}:")
            and step.label not in message):
        message = f"{step.name}: {message}"
    return Failure(step.name, step.plugin, message, error)


def analyze(
    source: PathLike | xr.Dataset,
    analyzers: StepSpec | Sequence[StepSpec],
    *,
    input: str = "probes",
    output: PathLike | None = None,
    overwrite: bool = False,
    plots: PathLike | None = None,
    params: Sequence[str] = (),
    write: bool = True,
    registry: Any = None,
) -> Analysis:
    """Run each analyzer on ``source`` and write its result; return what happened.

    ``source``: a run directory (its ``probes.nc``, or ``metrics.nc`` with
    ``input="metrics"``), a dataset file, or an ``xr.Dataset``. ``analyzers``: names, ``(name,
    params)`` pairs or callables ``(xr.Dataset) -> xr.Dataset``; ``params`` holds
    ``--param``-style ``[NAME.]key=value`` texts. A run's probes reach each analyzer at the
    steps where its ``variable`` (else every probe) was recorded, as during training
    (:func:`overtone.runschema.complete_steps`). Results go to ``output`` if given, else to
    one group per analyzer of ``RUN_DIR/analysis.nc``, else beside the file as
    ``<stem>.<name>.nc`` (a Dataset source is written only to ``output``); ``write=False``
    writes nothing. Existing outputs or groups are refused unless ``overwrite``. ``plots``
    saves each analyzer's ``plot(result)``. An analyzer that fails is recorded in
    :attr:`Analysis.failures` (one line each) and the others' results are still written.
    """
    import xarray as xr

    from overtone.io import open_dataset, write_dataset, write_groups

    if registry is None:
        from overtone.registry import registry as default_registry

        registry = default_registry()
    steps = resolve_steps(registry, "analyzer", analyzers, params)
    keys = _keys(steps)
    done = Analysis()
    for key, step in zip(keys, steps):
        try:
            step.build("analyzer")  # a bad parameter (ConfigError) stops here, before any work
        except PluginError as exc:
            done.failures[key] = _failure(step, exc)
    path = None if isinstance(source, xr.Dataset) else Path(source)
    run_dir = path is not None and path.is_dir()
    data_file = None if path is None else path / f"{input}.nc" if run_dir else path
    if run_dir and not data_file.exists():
        raise DatasetError(f"{str(path)!r} has no {input}.nc; is it a run directory?")
    targets = _targets(keys, path, run_dir, output, data_file, overwrite) if write else {}
    ds = source if data_file is None else open_dataset(data_file, registry=registry)
    probes = data_file is not None and data_file.name == "probes.nc"
    for key, step in zip(keys, steps):
        if key in done.failures:
            continue
        try:
            result = apply_step(step, _data_for(step, ds, probes), "analyzer")
        except OvertoneError as exc:
            done.failures[key] = _failure(step, exc)
            continue
        done.results[key] = result
        empty = all_nan_variables(result)
        if empty:
            names = ", ".join(repr(v) for v in empty)
            done.warnings.append(f"analyzer {step.label}: result variable{'s' * (len(empty) > 1)} {names} "
                                 f"{'are' if len(empty) > 1 else 'is'} NaN everywhere (written as it is); "
                                 f"check the analyzer and the data it reads")
    for key, step in zip(keys, steps):
        if key not in done.results or key not in targets:
            continue
        target, group = targets[key]
        try:  # one at a time: a result netCDF cannot hold is that analyzer's failure alone
            if group is None:
                write_dataset(done.results[key], target)
            else:
                write_groups(target, {key: done.results[key]})
        except (ValueError, TypeError) as exc:
            detail = " ".join(str(exc).split())
            done.failures[key] = _failure(step, PluginError(
                f"analyzer {step.label} returned a Dataset that netCDF cannot hold "
                f"({type(exc).__name__}: {detail}); expected numeric, bool, string or datetime "
                f"variables and attrs"))
            del done.results[key]
            continue
        done.written[key] = (target, group)
    if plots is not None:
        done.plots = write_plots(steps, keys, done.results, plots, done.failures)
    return done


def all_nan_variables(result: xr.Dataset) -> list[str]:
    """The floating-point data variables of ``result`` that hold values but are NaN everywhere."""
    empty = []
    for name, var in result.data_vars.items():
        if var.size and var.dtype.kind in "fc" and bool(var.isnull().all()):
            empty.append(str(name))
    return empty


def _data_for(step: Step, ds: xr.Dataset, probes: bool) -> xr.Dataset:
    """What the analyzer sees: probes at the steps its variable was recorded, else ``ds``."""
    if not probes or "step" not in ds.dims:
        return ds
    from overtone.runschema import complete_steps

    variable = step.params.get("variable")
    data = complete_steps(ds, variable) if isinstance(variable, str) else complete_steps(ds)
    if not data.sizes["step"]:
        which = f"{variable!r}" if isinstance(variable, str) else "every probe"
        raise DatasetError(f"{step.name}: no step of probes.nc holds {which}; nothing to analyze")
    return data


def write_plots(steps: Sequence[Step], keys: Sequence[str], results: dict[str, xr.Dataset],
                path: PathLike, failures: dict[str, Failure] | None = None) -> dict[str, Path]:
    """Save each successful analyzer's ``plot(result)``; analyzers without ``plot`` are skipped,
    a plot that fails is added to ``failures`` (the others are still drawn)."""
    import matplotlib.pyplot as plt

    written = {}
    for key, step in zip(keys, steps):
        if key not in results:
            continue
        try:
            figure = draw_plot(step, "analyzer", results[key])
        except OvertoneError as exc:
            if failures is None:
                raise
            failures[key] = _failure(step, exc)
            continue
        if figure is None:
            continue
        out = plot_path(path, key, len(steps) > 1)
        figure.savefig(out, dpi=110, bbox_inches="tight")
        plt.close(figure)
        written[key] = out
    return written
