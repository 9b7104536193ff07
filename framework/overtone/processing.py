"""``overtone.process``: signal processors over a dataset, chunk by chunk, written atomically.

The library behind ``overtone process``: open the input(s) lazily, apply the steps in order,
record the pipeline in ``history``, write the output (never over an input, never over an
existing file unless asked), and save each step's before/after plot.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from overtone import contract
from overtone.errors import ConfigError, OvertoneError
from overtone.pipeline import Step, StepSpec, apply_step, describe, draw_plot, resolve_steps
from overtone.runschema import add_history

if TYPE_CHECKING:
    import xarray as xr

#: The dimension inputs are chunked and joined along when none is named.
DEFAULT_CHUNK_DIM = "time"
PathLike = str | os.PathLike


@dataclass
class Processed:
    """What :func:`process` did: the result, where it went, and each step's plot."""

    dataset: xr.Dataset
    output: Path | None = None
    plots: dict[str, Path] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)


def check_output(output: PathLike, inputs: Sequence[PathLike] = (), *, overwrite: bool = False) -> Path:
    """The output-path policy: a ``.nc`` or ``.zarr`` path that is none of the inputs and,
    unless ``overwrite``, does not exist yet. Raises :class:`OvertoneError` otherwise."""
    from overtone.io import storage_format

    path = Path(output)
    if storage_format(path) is None:
        raise OvertoneError(f"output {str(path)!r}: write a .nc (netCDF) or .zarr path")
    if any(path.resolve() == Path(i).resolve() for i in inputs):
        raise OvertoneError(f"output {str(path)!r} is an input: overtone never overwrites its "
                            f"input; choose another output")
    if path.exists() and not overwrite:
        raise OvertoneError(f"output {str(path)!r} already exists; pass --overwrite "
                            f"(overwrite=True) to replace it")
    return path


def plot_path(path: PathLike, name: str, several: bool) -> Path:
    """Where a step's plot goes: ``path`` itself for one step, ``<stem>.<name><suffix>`` for several."""
    path = Path(path)
    return path.with_name(f"{path.stem}.{name}{path.suffix}") if several else path


def open_inputs(
    inputs: Sequence[PathLike],
    *,
    chunk_dim: str | None = None,
    chunks: int | None = 256,
    read_params: Mapping[str, Any] | None = None,
    registry: Any = None,
) -> xr.Dataset:
    """Open files lazily as one dataset, joined and chunked along ``chunk_dim``.

    With ``chunk_dim=None`` the dim is ``time``; a dataset without it (a single spectrum, a
    cube without time) is then one chunk, processed in memory. A ``chunk_dim`` named
    explicitly must be a dimension of the data.
    """
    from overtone.io import open_concatenated

    dim = chunk_dim or DEFAULT_CHUNK_DIM
    ds = open_concatenated(list(inputs), dim, chunks={dim: chunks} if chunks else "auto",
                           registry=registry, reader_params=dict(read_params or {}))
    if dim not in ds.dims:
        if chunk_dim is not None:
            raise OvertoneError(f"--chunk-dim {chunk_dim!r} is not a dimension of the input; "
                                f"dims: {', '.join(map(str, ds.dims))}")
        ds = ds.chunk()  # one chunk per variable: the whole (small) dataset at once
    return ds


def process(
    inputs: PathLike | Sequence[PathLike] | xr.Dataset,
    steps: StepSpec | Sequence[StepSpec],
    output: PathLike | None = None,
    *,
    overwrite: bool = False,
    plots: PathLike | None = None,
    read_params: Mapping[str, Any] | None = None,
    params: Sequence[str] = (),
    chunk_dim: str | None = None,
    chunks: int | None = 256,
    scheduler: str | None = None,
    progress: bool = False,
    registry: Any = None,
) -> Processed:
    """Apply signal processors to ``inputs`` in order and write the result to ``output``.

    ``inputs``: a path, several paths (the pieces of one observation, joined along the chunk
    dim in the order given) or an ``xr.Dataset``. ``steps``: processor names (``"a,b"`` or a
    list), ``(name, params)`` pairs, or callables ``(xr.Dataset) -> xr.Dataset``; ``params``
    holds ``--param``-style ``[NAME.]key=value`` texts. Files are opened lazily with
    ``chunks`` spectra per dask chunk along ``chunk_dim`` (see :func:`open_inputs`);
    ``read_params`` go to the reader. The output (``.nc`` or ``.zarr``) is written atomically,
    on the dask.distributed ``scheduler`` if one is named; an existing output is refused
    unless ``overwrite``. ``plots`` saves each step's plot of its own input and output.
    Nothing is written when the steps, the output path or the input are wrong.
    """
    import xarray as xr

    if registry is None:
        from overtone.registry import registry as default_registry

        registry = default_registry()
    resolved = resolve_steps(registry, "signal_processor", steps, params)
    for step in resolved:
        step.build("signal processor")  # a bad parameter fails here, before any reading
    from_file = not isinstance(inputs, xr.Dataset)
    paths = ([inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)) if from_file else []
    out = check_output(output, paths, overwrite=overwrite) if output is not None else None
    if from_file:
        ds = open_inputs(paths, chunk_dim=chunk_dim, chunks=chunks, read_params=read_params,
                         registry=registry)
    elif read_params:
        raise ConfigError("read_params apply to files only; the input is already a Dataset")
    else:
        ds = inputs
    stages = [ds]
    for step in resolved:
        after = apply_step(step, stages[-1], "signal processor")
        stages.append(contract.expect_structure_kept(stages[-1], after, f"signal processor {step.label}"))
    result = stages[-1]
    names = " ".join(Path(p).name for p in paths[:3]) + (
        f" (+{len(paths) - 3} more)" if len(paths) > 3 else "") if paths else "<dataset>"
    add_history(result, {"component": "overtone process", "inputs": names,
                         "steps": describe(resolved)})
    done = Processed(result, steps=resolved)
    if out is not None:
        done.dataset, done.output = _write(result, out, scheduler, progress, stages, resolved), out
    elif not result.chunks:  # in memory; a lazy result stays lazy (checked where it is written)
        refuse_all_nan(stages, result, resolved)
    if plots is not None:
        done.plots = write_plots(resolved, stages, plots)
    return done


def has_finite(values: Any) -> bool:
    """Whether ``values`` (a DataArray, NumPy- or dask-backed) holds a finite number, looking
    chunk by chunk along its first dim and stopping at the first one that does (a healthy
    lazy result costs one chunk, not a second pass over the data)."""
    import numpy as np

    if values.ndim == 0:
        return bool(np.isfinite(values.values))
    dim = values.dims[0]
    chunks = values.chunksizes.get(dim) if values.chunks else None
    start = 0
    for size in chunks or [256] * -(-values.sizes[dim] // 256):
        block = np.asarray(values.isel({dim: slice(start, start + size)}).values)
        if np.isfinite(block).any():
            return True
        start += size
    return False


def refuse_all_nan(stages: Sequence[xr.Dataset], result: xr.Dataset, steps: Sequence[Step]) -> None:
    """Raise a one-line PluginError when a floating variable of ``result`` has no finite value
    although the input (``stages[0]``) had some, naming the first step whose output lost them
    (a broken processor, or a division by zero)."""
    import numpy as np

    from overtone.errors import PluginError

    for name in stages[0].data_vars:
        if (name not in result.data_vars or not np.issubdtype(result[name].dtype, np.floating)
                or has_finite(result[name]) or not has_finite(stages[0][name])):
            continue
        culprit = steps[-1]
        for step, stage in zip(steps, stages[1:], strict=True):
            if name in stage.data_vars and not has_finite(stage[name]):
                culprit = step
                break
        raise PluginError(
            f"signal processor {culprit.label} returned {name!r} with no finite value (every value "
            f"NaN or inf) although its input had finite ones; nothing was written: check the step's "
            f"parameters or fix the plugin")


def _write(result: xr.Dataset, out: Path, scheduler: str | None, progress: bool,
           stages: Sequence[xr.Dataset], steps: Sequence[Step]) -> xr.Dataset:
    from overtone.io import open_dataset, write_dataset
    from overtone.progress import progress_enabled

    def verify(written: Path) -> None:  # read back what was written, not computed again
        with open_dataset(written, chunks={}) as ds:
            refuse_all_nan(stages, ds, steps)

    if scheduler:
        from dask.distributed import Client

        with Client(scheduler):
            write_dataset(result, out, progress=False, verify=verify)
    else:
        write_dataset(result, out, progress=progress_enabled(progress), verify=verify)
    return open_dataset(out)  # lazily, so using the result does not compute it again


def write_plots(steps: Sequence[Step], stages: Sequence[xr.Dataset], path: PathLike) -> dict[str, Path]:
    """Save each step's ``plot(before, after)`` where ``before``/``after`` are that step's own
    input and output (``stages[i]``, ``stages[i + 1]``); steps without ``plot`` are skipped."""
    import matplotlib.pyplot as plt

    written = {}
    for i, step in enumerate(steps):
        figure = draw_plot(step, "signal processor", stages[i], stages[i + 1])
        if figure is None:
            continue
        out = plot_path(path, step.name, len(steps) > 1)
        figure.savefig(out, dpi=110, bbox_inches="tight")
        plt.close(figure)
        written[step.name] = out
    return written
