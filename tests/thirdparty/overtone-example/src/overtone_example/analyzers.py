"""An analyzer and a signal processor over xarray."""

from __future__ import annotations

import xarray as xr
from overtone import DatasetError


class Moments:
    """Mean and standard deviation of ``variable`` over ``dim``."""

    def __init__(self, variable: str = "train_loss", dim: str = "step") -> None:
        self.variable, self.dim = variable, dim

    def __call__(self, ds: xr.Dataset) -> xr.Dataset:
        if self.variable not in ds:
            raise DatasetError(f"moments: no variable {self.variable!r}; have {', '.join(map(str, ds.data_vars))}")
        data = ds[self.variable]
        if self.dim not in data.dims:
            raise DatasetError(f"moments: {self.variable!r} has no dim {self.dim!r}; pass dim=NAME")
        return xr.Dataset({"mean": data.mean(self.dim), "std": data.std(self.dim)})

    def plot(self, result: xr.Dataset):
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots()
        ax.bar(["mean", "std"], [float(result["mean"]), float(result["std"])])
        return fig


class Demean:
    """Subtract each spectrum's mean along ``frequency``; lazy on dask input."""

    def __init__(self, variable: str = "spectra") -> None:
        self.variable = variable

    def __call__(self, ds: xr.Dataset) -> xr.Dataset:
        out = ds.copy()
        out[self.variable] = ds[self.variable] - ds[self.variable].mean("frequency")
        out[self.variable].attrs = ds[self.variable].attrs
        out.attrs["processed_by"] = "demean"
        return out
