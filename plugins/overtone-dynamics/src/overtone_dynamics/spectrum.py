"""Spectra of representations: ``pca-structure`` and ``effective-rank``.

Both work on the covariance eigenvalues of a (sample, dim) matrix X: with X centred over
samples, lambda_i = s_i^2 / (n - 1) for the singular values s_i of X.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from overtone import ConfigError, DatasetError
from overtone.runschema import REPRESENTATIONS, STEP, drop_unrecorded_steps, pick_variable

from overtone_dynamics._common import (
    as_float,
    check_dims,
    figure,
    finish,
    last_step,
    per_step,
    plot_over_steps,
)


def covariance_spectrum(x: np.ndarray, analyzer: str) -> np.ndarray:
    """Eigenvalues (descending) of the sample covariance of ``x`` (n, d), float64."""
    n = x.shape[0]
    if n < 2:
        raise DatasetError(f"{analyzer}: {n} sample(s); a covariance needs at least 2")
    centred = x - x.mean(axis=0, keepdims=True)
    s = np.linalg.svd(centred, compute_uv=False)
    eig = s**2 / (n - 1)
    if not eig.sum() > 0:
        raise DatasetError(f"{analyzer}: the representations are constant (zero variance); "
                           "the spectrum is undefined")
    return eig


class PCAStructure:
    """Explained variance of the top principal components of representations.

    ratio_i = lambda_i / sum_j lambda_j for the covariance eigenvalues lambda (descending).
    A "crystal"-like representation (the harmonic-loss paper, arXiv 2502.01628, reports the
    variance explained by the first two or three components) puts nearly all variance in a
    few components; ``top_fraction`` is the share of the first ``top`` components.
    """

    name = "pca-structure"

    def __init__(self, variable: str | None = None, n_components: int = 10, top: int = 2) -> None:
        if n_components < 1 or top < 1:
            raise ConfigError(f"{self.name}: n_components and top must be at least 1")
        self.variable, self.n_components, self.top = variable, n_components, top

    def __call__(self, ds: xr.Dataset) -> xr.Dataset:
        da = pick_variable(ds, self.variable, REPRESENTATIONS, self.name)
        check_dims(da, 2, self.name, "(sample, dim)")
        da = drop_unrecorded_steps(da, self.name)
        values = as_float(da, self.name)
        sample_dim = [d for d in da.dims if d != STEP][0]
        k = min(self.n_components, da.sizes[sample_dim], da.sizes[da.dims[-1]])
        top = min(self.top, k)

        def kernel(x: np.ndarray) -> xr.Dataset:
            eig = covariance_spectrum(x, self.name)
            ratio = eig / eig.sum()
            return xr.Dataset({
                "explained_variance": ("component", eig[:k]),
                "explained_variance_ratio": ("component", ratio[:k]),
                "cumulative_ratio": ("component", np.cumsum(ratio)[:k]),
                "top_fraction": ((), float(ratio[:top].sum())),
            })

        result = per_step(da.copy(data=values), kernel)
        result = result.assign_coords(component=np.arange(1, k + 1))
        units = da.attrs.get("units")
        result["explained_variance"].attrs.update(
            long_name="variance along principal component",
            units=f"({units})^2" if units else "squared representation units")
        result["explained_variance_ratio"].attrs.update(long_name="explained variance ratio", units="1")
        result["cumulative_ratio"].attrs.update(long_name="cumulative explained variance ratio", units="1")
        result["top_fraction"].attrs.update(long_name=f"variance in the top {top} components", units="1")
        return finish(result, self.name, vars(self), str(da.name))

    def plot(self, result: xr.Dataset):
        """Explained variance ratio per component (last step) and the top share over steps."""
        fig, (ax1, ax2) = figure(2)
        last = last_step(result)
        ax1.bar(last["component"].values, last["explained_variance_ratio"].values)
        ax1.plot(last["component"].values, last["cumulative_ratio"].values, "k.-", label="cumulative")
        ax1.set_xlabel("principal component")
        ax1.set_ylabel("explained variance ratio")
        ax1.set_ylim(0, 1.05)
        ax1.legend()
        plot_over_steps(ax2, result, "top_fraction")
        ax2.set_ylim(0, 1.05)
        return fig


class EffectiveRank:
    """Effective dimensionality of representations from their covariance spectrum.

    ``participation_ratio`` PR = (sum_i lambda_i)^2 / sum_i lambda_i^2 (equals k for k equal
    eigenvalues and 1 for one); ``entropy_rank`` = exp(-sum_i p_i log p_i), p_i =
    lambda_i / sum_j lambda_j (Roy and Vetterli 2007), also k for k equal eigenvalues.
    """

    name = "effective-rank"

    def __init__(self, variable: str | None = None) -> None:
        self.variable = variable

    def __call__(self, ds: xr.Dataset) -> xr.Dataset:
        da = pick_variable(ds, self.variable, REPRESENTATIONS, self.name)
        check_dims(da, 2, self.name, "(sample, dim)")
        da = drop_unrecorded_steps(da, self.name)
        values = as_float(da, self.name)

        def kernel(x: np.ndarray) -> xr.Dataset:
            eig = covariance_spectrum(x, self.name)
            p = eig / eig.sum()
            nz = p[p > 0]
            return xr.Dataset({
                "participation_ratio": ((), float(eig.sum() ** 2 / np.sum(eig**2))),
                "entropy_rank": ((), float(np.exp(-np.sum(nz * np.log(nz))))),
            })

        result = per_step(da.copy(data=values), kernel)
        result["participation_ratio"].attrs.update(
            long_name="participation ratio", units="dimensions",
            description="(sum lambda)^2 / sum lambda^2 of covariance eigenvalues")
        result["entropy_rank"].attrs.update(
            long_name="entropy effective rank", units="dimensions",
            description="exp(Shannon entropy of normalised covariance eigenvalues)")
        return finish(result, self.name, vars(self), str(da.name))

    def plot(self, result: xr.Dataset):
        """Participation ratio and entropy rank over steps."""
        fig, (ax,) = figure(1)
        plot_over_steps(ax, result, "participation_ratio", label="participation ratio")
        plot_over_steps(ax, result, "entropy_rank", label="entropy rank")
        ax.set_ylabel("effective rank [dimensions]")
        ax.legend()
        return fig
