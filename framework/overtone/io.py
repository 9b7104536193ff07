"""Results I/O: netCDF (h5netcdf) and Zarr, with atomic writes and readable errors.

A write goes to a temporary path beside the target and is renamed into place only when it
is complete, so a crash never leaves a half-written file where a good one was.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
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
    """Yield a temporary path beside ``path``; move it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    target = tmp / path.name
    try:
        yield target
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
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _progress(enabled: bool):
    if not enabled:
        return contextlib.nullcontext()
    from tqdm.dask import TqdmCallback

    return TqdmCallback(desc="writing", unit="task")


def write_dataset(ds: xr.Dataset, path: str | Path, *, progress: bool = False) -> Path:
    """Write ``ds`` atomically to netCDF (``.nc``, h5netcdf engine) or Zarr (``.zarr``)."""
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
        }


def write_groups(path: str | Path, groups: Mapping[str, xr.Dataset]) -> Path:
    """Add or replace netCDF groups in ``path`` atomically, keeping the other groups."""
    import xarray as xr

    merged = read_groups(path)
    merged.update(groups)
    tree = xr.DataTree.from_dict({f"/{name}": ds for name, ds in merged.items()})
    path = Path(path)
    with atomic_target(path) as tmp:
        tree.to_netcdf(tmp, engine="h5netcdf")
    return path
