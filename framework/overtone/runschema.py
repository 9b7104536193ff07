"""The run data layout shared by engines and analyzers (only ``complete_steps`` here so far)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import xarray as xr


def complete_steps(ds: xr.Dataset, variable: str | None = None) -> xr.Dataset:
    """``ds`` at the steps where ``variable`` (else every variable with a ``step`` dim) was
    recorded, i.e. is not NaN everywhere; with ``variable``, the other per-step variables are
    left out and the step-free ones (``labels``) kept. A dataset without ``step`` is returned."""
    import numpy as np

    if "step" not in ds.dims:
        return ds
    if variable is not None and variable in ds.data_vars:
        names = [variable] if "step" in ds[variable].dims else []
        ds = ds[[variable, *[n for n in ds.data_vars if n != variable and "step" not in ds[n].dims]]]
    else:
        names = [n for n in ds.data_vars if "step" in ds[n].dims]
    keep = np.ones(ds.sizes["step"], dtype=bool)
    for name in names:
        da = ds[name]
        if np.issubdtype(da.dtype, np.floating):
            other = [d for d in da.dims if d != "step"]
            keep &= np.asarray((da.notnull().any(other) if other else da.notnull()).values, bool)
    return ds if keep.all() else ds.isel(step=np.flatnonzero(keep))
