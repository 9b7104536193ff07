"""Results I/O: netCDF (h5netcdf) and Zarr, with atomic writes and readable errors.

A write goes to a temporary path beside the target and is renamed into place only when it
is complete, so a crash never leaves a half-written file where a good one was.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from overtone.errors import DatasetError

if TYPE_CHECKING:
    import xarray as xr

NETCDF_SUFFIXES = (".nc", ".nc4", ".netcdf", ".h5", ".hdf5")
ZARR_SUFFIXES = (".zarr",)


def storage_format(path: str | Path) -> str | None:
    """``"netcdf"``, ``"zarr"`` or ``None`` from a path's suffix."""
    name = str(path).rstrip("/").lower()
    if name.endswith(ZARR_SUFFIXES):
        return "zarr"
    if name.endswith(NETCDF_SUFFIXES):
        return "netcdf"
    return None


@contextlib.contextmanager
def atomic_target(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` only if the block succeeds.

    What the block wrote (a file, or every file of a directory such as a Zarr store) is
    fsync'ed before the rename and the parent directory after it, so once this returns the
    new content survives a power loss, and before that the old content stays whole.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    target = tmp / path.name
    try:
        yield target
        fsync_tree(target)
        if target.is_dir():
            backup = None
            if path.exists():
                backup = path.with_name(f".{path.name}.old")
                if backup.exists():
                    shutil.rmtree(backup)
                os.replace(path, backup)
            os.replace(target, path)
            if backup is not None:
                shutil.rmtree(backup, ignore_errors=True)
        else:
            os.replace(target, path)
        fsync_directory(path.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def fsync_file(path: str | Path) -> None:
    """Flush a file's data and metadata to the disk (``os.fsync``)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_directory(path: str | Path) -> None:
    """Flush a directory's entries (a rename or a new file in it) to the disk.

    A no-op where directories cannot be opened (Windows).
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a directory; the rename still stands
        pass
    finally:
        os.close(fd)


def fsync_tree(path: str | Path) -> None:
    """fsync ``path``: a file, or every file and directory below a directory (a Zarr store)."""
    path = Path(path)
    if not path.is_dir():
        if path.exists():
            fsync_file(path)
        return
    for root, _, files in os.walk(path, topdown=False):
        for name in files:
            fsync_file(Path(root) / name)
        fsync_directory(root)


def _progress(enabled: bool):
    if not enabled:
        return contextlib.nullcontext()
    from tqdm.dask import TqdmCallback

    return TqdmCallback(desc="writing", unit="task")


def write_dataset(ds: xr.Dataset, path: str | Path, *, progress: bool = False,
                  verify: Callable[[Path], None] | None = None) -> Path:
    """Write ``ds`` atomically to netCDF (``.nc``, h5netcdf engine) or Zarr (``.zarr``).

    ``verify`` is called with the written temporary path before it is moved onto ``path``; if
    it raises, nothing is written (an existing ``path`` stays as it was).
    """
    fmt = storage_format(path)
    if fmt is None:
        raise DatasetError(
            f"cannot write {str(path)!r}: unknown format; use a .nc (netCDF) or .zarr path"
        )
    path = Path(path)
    with atomic_target(path) as tmp, _progress(progress):
        if fmt == "zarr":
            ds.to_zarr(tmp, mode="w", consolidated=False)
        else:
            ds.to_netcdf(tmp, engine="h5netcdf")
        if verify is not None:
            verify(tmp)
    return path


def open_dataset(
    path: str | Path,
    *,
    chunks: Mapping[str, Any] | str | None = None,
    group: str | None = None,
    registry: Any = None,
    reader_params: dict[str, Any] | None = None,
) -> xr.Dataset:
    """Open a netCDF or Zarr file, or any file a ``reader`` component handles by its suffix.

    ``chunks`` is passed on to xarray (dask-backed, lazy) or to the reader;
    ``reader_params`` (e.g. ``{"polarization": "mean"}``) to the reader only.
    """
    import xarray as xr

    path = Path(path)
    if not path.exists():
        raise DatasetError(f"dataset {str(path)!r} not found; check the path")
    fmt = storage_format(path)
    if fmt is None or (fmt == "netcdf" and _reader_for(path, registry) is not None):
        # a reader plugin that claims the suffix (e.g. HiFAST's .hdf5) wins over plain netCDF
        return _open_with_reader(path, chunks, registry, reader_params or {})
    if reader_params:
        raise DatasetError(f"{str(path)!r} is read as {fmt}, which takes no reader parameters "
                           f"(got {', '.join(reader_params)})")
    try:
        if fmt == "zarr":
            return xr.open_zarr(path, chunks=chunks, group=group, consolidated=False)
        return xr.open_dataset(path, engine="h5netcdf", chunks=chunks, group=group)
    except Exception as exc:
        kind = "Zarr store" if fmt == "zarr" else "netCDF4/HDF5 file"
        raise DatasetError(
            f"cannot read {str(path)!r} as a {kind} ({type(exc).__name__}: {exc}); "
            f"the file is truncated or not in that format: re-create it"
        ) from exc


def open_concatenated(
    paths: Sequence[str | Path],
    dim: str,
    *,
    chunks: Mapping[str, Any] | str | None = None,
    registry: Any = None,
    reader_params: dict[str, Any] | None = None,
) -> xr.Dataset:
    """Open several files (as :func:`open_dataset` does, lazily) and join them along ``dim``
    in the order given, as one dataset: the pieces of one observation written to several
    files. Every other coordinate, and every variable without ``dim``, must be equal in all
    files (they are taken once); a file that differs raises :class:`DatasetError` naming it."""
    import xarray as xr

    paths = [Path(p) for p in paths]
    parts = [open_dataset(p, chunks=chunks, registry=registry, reader_params=reader_params)
             for p in paths]
    if len(parts) == 1:
        return parts[0]
    first, name0 = parts[0], paths[0].name
    for path, part in zip(paths[1:], parts[1:]):
        if dim not in part.dims:
            raise DatasetError(f"{path.name} has no dimension {dim!r} to join along; its dims: "
                               f"{', '.join(map(str, part.dims))}")
        for name, coord in first.coords.items():
            if dim in coord.dims:
                continue
            if name not in part.coords or not coord.equals(part.coords[name]):
                raise DatasetError(f"{path.name}: its {name!r} coordinate differs from {name0}'s; "
                                   f"only files with the same {name!r} join into one dataset: "
                                   f"process them separately")
        for name, var in first.data_vars.items():
            if dim not in var.dims and (name not in part.data_vars or not var.equals(part[name])):
                raise DatasetError(f"{path.name}: {name!r} (which has no {dim!r} dim) differs from "
                                   f"{name0}'s; process the files separately")
    joined = xr.concat(parts, dim=dim, data_vars="minimal", coords="minimal", compat="override",
                       join="override", combine_attrs="override")
    joined.attrs["source_files"] = ", ".join(p.name for p in paths)
    return joined


def _readers(registry: Any) -> list[Any]:
    """The reader entries of ``registry`` (the global one when None), sorted by name."""
    if registry is None:
        from overtone.registry import registry as default_registry

        registry = default_registry()
    return registry.of_kind("reader")


def _reader_for(path: Path, registry: Any) -> Any:
    """The reader entry whose suffix matches the longest ending of ``path``'s name, if any.

    ``x.sw.fits`` goes to a reader claiming ``.sw.fits`` rather than one claiming ``.fits``;
    between readers claiming the same suffix the first by name wins.
    """
    name = path.name.lower()
    best, best_length = None, 0
    for entry in _readers(registry):
        length = max((len(s) for s in entry.component.suffixes if name.endswith(s)), default=0)
        if length > best_length:
            best, best_length = entry, length
    return best


def _open_with_reader(path: Path, chunks: Any, registry: Any, params: dict[str, Any] | None = None) -> xr.Dataset:
    entry = _reader_for(path, registry)
    if entry is not None:
        from overtone.params import resolve_params

        kwargs = {} if chunks is None else {"chunks": chunks}
        if params:
            where = f"reader {entry.component.name!r} (--read)"
            kwargs.update({k: v for k, v in resolve_params(params, entry.component.params, where).items()
                           if k in params})
        from overtone.contract import expect_dataset

        product = entry.component.load()(path, **kwargs)
        return expect_dataset(product, entry, action=f"opened {path.name!r} as")
    suffix = "".join(path.suffixes).lower()
    readers = _readers(registry)
    known = sorted({s for e in readers for s in e.component.suffixes})
    raise DatasetError(
        f"cannot open {str(path)!r}: no reader for {suffix or 'files without a suffix'!r}; "
        f"known suffixes: {', '.join(['.nc', '.zarr', *known])}"
    )


def read_groups(path: str | Path) -> dict[str, xr.Dataset]:
    """Load every group of a netCDF file into memory, keyed by group name."""
    import xarray as xr

    path = Path(path)
    if not path.exists():
        return {}
    try:
        tree = xr.open_datatree(path, engine="h5netcdf")
    except Exception as exc:
        raise DatasetError(
            f"cannot read {str(path)!r} as a netCDF4/HDF5 file ({type(exc).__name__}: {exc}); "
            f"move it away to start a new one"
        ) from exc
    with tree:
        return {
            node.path.strip("/"): node.to_dataset().load()
            for node in tree.subtree
            if node.path != "/" and (node.data_vars or node.coords)
            and not node.path.strip("/").startswith(INCOMING)
        }


#: Prefix of the group a new group is written to before it takes its name (write_groups).
INCOMING = "_incoming_"


def write_groups(path: str | Path, groups: Mapping[str, xr.Dataset]) -> Path:
    """Add or replace netCDF groups in ``path`` in place, leaving the other groups untouched.

    Nothing is read back or rewritten: each group is written beside the old one under a
    temporary name, and only when it is complete does it replace the old one (an HDF5
    unlink and move), so a group that fails to encode leaves the file as it was. The file is
    created with HDF5's persistent free-space tracking, so replacing a group again and again
    reuses the space of the replaced ones; it is fsync'ed before returning.
    """
    import h5py

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        with atomic_target(path) as tmp, h5py.File(tmp, "w", fs_strategy="fsm", fs_persist=True,
                                                    libver=("v110", "latest")):
            pass
    for name, ds in groups.items():
        name = str(name).strip("/")
        incoming = INCOMING + name.replace("/", "_")
        try:
            ds.to_netcdf(path, mode="a", group=incoming, engine="h5netcdf")
        except BaseException:
            with h5py.File(path, "a") as f:
                if incoming in f:
                    del f[incoming]
            raise
        with h5py.File(path, "a") as f:
            if name in f:
                del f[name]
            if "/" in name:
                f.require_group(name.rsplit("/", 1)[0])
            f.move(incoming, name)
    fsync_file(path)
    return path


# -- probes: one step appended at a time along an unlimited ``step`` dim --------------------


def append_step(path: str | Path, snapshot: xr.Dataset, *, dim: str = "step",
                complevel: int = 0) -> Path:
    """Append one step to the netCDF file ``path`` along its unlimited dim ``dim``.

    ``snapshot`` holds the variables of one step (those with ``dim`` have length 1 along it,
    first) and the variables and coordinates that do not vary with it. The file and any
    variable it lacks are created; a per-step variable new to the file is NaN at the earlier
    steps, and one absent from ``snapshot`` is NaN at this step. NaN steps take no disk space
    (HDF5 allocates no chunk for them); each step of a variable is one zlib-compressed chunk.
    Only this step is written: the cost does not grow with the steps already in the file.
    Step-free variables are written once, when first seen. Raises :class:`DatasetError` when
    the step does not follow the last one or a variable's shape changed.
    """
    import h5netcdf
    import numpy as np

    path = Path(path)
    if dim not in snapshot.dims or snapshot.sizes[dim] != 1:
        raise DatasetError(f"append_step: the snapshot needs a {dim!r} dim of length 1; "
                           f"its dims: {dict(snapshot.sizes)}")
    step = snapshot[dim].values[0]
    per_step = {n: v for n, v in snapshot.data_vars.items() if dim in v.dims}
    for name, var in per_step.items():
        if var.dims[0] != dim:
            raise DatasetError(f"append_step: {name!r} has dims {var.dims}; {dim!r} must be first")
    fixed = snapshot.drop_vars([*per_step, dim]).drop_dims(dim, errors="ignore")
    fixed.attrs = {}
    if path.exists() and _append_existing(path, dim, step, per_step, fixed):
        return path
    if not path.exists():
        with h5netcdf.File(path, "w") as f:
            f.dimensions[dim] = None
            f.create_variable(dim, (dim,), dtype=snapshot[dim].dtype).attrs.update(
                _attrs(snapshot[dim].attrs))
            f.attrs.update(_attrs(snapshot.attrs))
    with h5netcdf.File(path, "a") as f:
        n = f.dimensions[dim].size
        if n and f[dim][n - 1] >= step:
            raise DatasetError(f"{path.name}: cannot append {dim} {step} after {dim} "
                               f"{f[dim][n - 1]}; steps must increase")
        sizes = {d: f.dimensions[d].size for d in f.dimensions}
        missing = [str(k) for k in (*fixed.data_vars, *fixed.coords) if k not in f.variables]
    for name, var in [*per_step.items(), *fixed.variables.items()]:
        for d, size in var.sizes.items():
            if d != dim and d in sizes and sizes[d] != size:
                raise DatasetError(f"{path.name}: {name!r} has {d}={size} at {dim} {step}, "
                                   f"but {sizes[d]} in the file")
    if missing:  # step-free variables and coordinates, written once; xarray encodes them
        fixed[missing].to_netcdf(path, mode="a", engine="h5netcdf")
    with h5netcdf.File(path, "a") as f:
        f.resize_dimension(dim, n + 1)
        f[dim][n] = step
        for name, var in per_step.items():
            for d, size in zip(var.dims[1:], var.shape[1:]):
                if d not in f.dimensions:
                    f.dimensions[d] = size
            if name not in f.variables:
                float_type = np.issubdtype(var.dtype, np.floating)
                packing = {"compression": "gzip", "compression_opts": complevel, "shuffle": True} \
                    if complevel else {}
                target = f.create_variable(
                    name, var.dims, dtype=var.dtype, chunks=(1, *var.shape[1:]),
                    fillvalue=var.dtype.type(np.nan) if float_type else None, **packing)
                attrs = _attrs(var.attrs)
                linked = [str(c) for c in snapshot.coords if c not in snapshot.dims
                          and set(snapshot[c].dims) <= set(var.dims)]
                if linked:
                    attrs["coordinates"] = " ".join(linked)
                target.attrs.update(attrs)
            f[name][n] = np.asarray(var.values[0])
    return path


def _append_existing(path: Path, dim: str, step: Any, per_step: Mapping[str, Any], fixed: Any) -> bool:
    """The common case of :func:`append_step`, through h5py alone (opening with h5netcdf reads
    every netCDF attribute, several times the cost): every variable is in the file already.
    Returns False, having changed nothing, when something must be created."""
    import h5py
    import numpy as np

    with h5py.File(path, "a") as f:
        if dim not in f or any(k not in f for k in (*per_step, *fixed.data_vars, *fixed.coords)):
            return False
        steps = f[dim]
        n = steps.shape[0]
        if n and steps[n - 1] >= step:
            raise DatasetError(f"{path.name}: cannot append {dim} {step} after {dim} "
                               f"{steps[n - 1]}; steps must increase")
        along = [steps, *(ds for ds in f.values() if isinstance(ds, h5py.Dataset) and ds != steps
                          and ds.maxshape[:1] == (None,) and ds.shape[0] == n
                          and len(ds.dims[0]) and ds.dims[0][0] == steps)]
        for name, var in per_step.items():
            if f[name] not in along:
                return False
            for d, size, stored in zip(var.dims[1:], var.shape[1:], f[name].shape[1:]):
                if size != stored:
                    raise DatasetError(f"{path.name}: {name!r} has {d}={size} at {dim} {step}, "
                                       f"but {stored} in the file")
        for ds in along:
            ds.resize(n + 1, axis=0)
        steps[n] = step
        for name, var in per_step.items():
            f[name][n] = np.asarray(var.values[0])
    return True


def _attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Attributes netCDF can store: strings, numbers and lists of them (others as str)."""
    import numpy as np

    out = {}
    for key, value in attrs.items():
        if isinstance(value, (str, int, float, np.number, np.ndarray)) and not isinstance(value, bool):
            out[str(key)] = value
        elif isinstance(value, bool):
            out[str(key)] = int(value)
        else:
            out[str(key)] = str(value)
    return out


def truncate_steps(path: str | Path, upto: Any, *, dim: str = "step") -> int:
    """Drop the steps after ``upto`` from a file :func:`append_step` wrote (in place; steps
    increase, so the kept ones are a prefix). Returns how many steps are kept."""
    import h5netcdf
    import numpy as np

    try:
        with h5netcdf.File(path, "a") as f:
            steps = f[dim][:]
            kept = int(np.searchsorted(steps, upto, side="right"))
            if kept < len(steps):
                f.resize_dimension(dim, kept)
    except (OSError, KeyError) as exc:
        raise DatasetError(
            f"cannot cut {str(path)!r} back to {dim} {upto} ({type(exc).__name__}: {exc}); it is "
            f"damaged (a crash during an append?): move it away, and the steps after {upto} "
            f"are recorded into a new one") from exc
    fsync_file(path)
    return kept
