"""Geometry of weights and features: ``condensation`` and ``neural-collapse``."""

from __future__ import annotations

import numpy as np
import xarray as xr
from overtone import ConfigError, DatasetError
from overtone.runschema import STEP, WEIGHT_PREFIX, drop_unrecorded_steps, pick_variable

from overtone_dynamics._common import (
    as_float,
    check_dims,
    figure,
    finish,
    last_step,
    per_step,
    plot_over_steps,
)


def cosine_matrix(w: np.ndarray, analyzer: str = "condensation") -> np.ndarray:
    """C_ij = w_i . w_j / (|w_i| |w_j|) for the rows (neurons' input weights) of ``w`` (out, in)."""
    norms = np.linalg.norm(w, axis=1)
    if np.any(norms == 0):
        raise DatasetError(f"{analyzer}: {int(np.sum(norms == 0))} neuron(s) have all-zero input "
                           "weights; their direction (cosine similarity) is undefined")
    unit = w / norms[:, None]
    return np.clip(unit @ unit.T, -1.0, 1.0)


def direction_groups(cos: np.ndarray, threshold: float) -> np.ndarray:
    """Group label of each neuron: neurons sharing a line (|cos| >= threshold), greedily.

    Each not-yet-grouped neuron opens a group holding every remaining neuron within the
    threshold of it (parallel or antiparallel).
    """
    labels = np.full(len(cos), -1)
    group = 0
    for i in range(len(cos)):
        if labels[i] >= 0:
            continue
        labels[(labels < 0) & (np.abs(cos[i]) >= threshold)] = group
        labels[i] = group
        group += 1
    return labels


def count_directions(cos: np.ndarray, threshold: float) -> int:
    """Number of distinct directions among the neurons (see :func:`direction_groups`)."""
    return int(direction_groups(cos, threshold).max()) + 1


class Condensation:
    """Condensation of neurons' input weights (Luo, Xu et al.: neurons align on few directions).

    For W (out, in) the cosine similarity of every pair of rows, C = U U^T with U = rows of W
    over their norms. Summaries: ``aligned_fraction``, the share of neuron pairs (i < j) with
    |C_ij| >= ``threshold``; ``n_directions``, the number of distinct directions found by
    grouping neurons within that threshold (condensed networks have few).
    """

    name = "condensation"

    def __init__(self, variable: str | None = None, threshold: float = 0.9) -> None:
        if not 0 < threshold <= 1:
            raise ConfigError(f"{self.name}: threshold = {threshold}; it must lie in (0, 1]")
        self.variable, self.threshold = variable, threshold

    def __call__(self, ds: xr.Dataset) -> xr.Dataset:
        da = pick_variable(ds, self.variable, [], self.name, prefix=WEIGHT_PREFIX)
        check_dims(da, 2, self.name, "(out, in)")
        da = drop_unrecorded_steps(da, self.name)
        values = as_float(da, self.name)
        n = da.sizes[[d for d in da.dims if d != STEP][0]]
        if n < 2:
            raise DatasetError(f"{self.name}: {da.name!r} has {n} neuron(s); pairs need 2")
        upper = np.triu_indices(n, k=1)

        def kernel(w: np.ndarray) -> xr.Dataset:
            cos = cosine_matrix(w, self.name)
            return xr.Dataset({
                "cosine": (("neuron", "neuron_b"), cos),
                "aligned_fraction": ((), float(np.mean(np.abs(cos[upper]) >= self.threshold))),
                "n_directions": ((), count_directions(cos, self.threshold)),
            })

        result = per_step(da.copy(data=values), kernel)
        result = result.assign_coords(neuron=np.arange(n), neuron_b=np.arange(n))
        result["cosine"].attrs.update(long_name="cosine similarity of input weights", units="1")
        result["aligned_fraction"].attrs.update(
            long_name=f"pairs with |cos| >= {self.threshold}", units="1")
        result["n_directions"].attrs.update(long_name="distinct weight directions", units="count")
        result.attrs["threshold"] = self.threshold
        return finish(result, self.name, vars(self), str(da.name))

    def plot(self, result: xr.Dataset):
        """The cosine matrix at the last step (neurons ordered by direction group) and the
        aligned share over steps."""
        fig, (ax1, ax2) = figure(2)
        cos = last_step(result)["cosine"].values
        threshold = float(result.attrs.get("threshold", 0.9))
        order = np.argsort(direction_groups(cos, threshold), kind="stable")
        mesh = ax1.imshow(cos[np.ix_(order, order)], vmin=-1, vmax=1, cmap="RdBu_r")
        fig.colorbar(mesh, ax=ax1, label="cosine similarity")
        ax1.set_title("input-weight cosine similarity (last step)")
        ax1.set_xlabel("neuron")
        ax1.set_ylabel("neuron")
        plot_over_steps(ax2, result, "aligned_fraction")
        ax2.set_ylim(0, 1.05)
        return fig


def collapse_metrics(h: np.ndarray, y: np.ndarray, w: np.ndarray | None,
                     b: np.ndarray | None) -> dict[str, float]:
    """NC1-NC4 of Papyan, Han and Donoho 2020 for features ``h`` (n, d), labels ``y`` (n,).

    With class means mu_c, global mean mu_G, M = [mu_c - mu_G] (C, d):
    NC1 = tr(Sigma_W Sigma_B^+) / C (within- over between-class covariance);
    NC2 = || M M^T / ||M M^T||_F - (I - 11^T/C) / sqrt(C - 1) ||_F (distance of the class-mean
    Gram matrix to a simplex equiangular tight frame), with ``equinorm`` = std/mean of |M_c|
    and ``equiangle`` = mean |cos(M_c, M_c') + 1/(C - 1)| over pairs;
    NC3 = || W / ||W||_F - M / ||M||_F ||_F^2 (self-duality of classifier rows W (C, d));
    NC4 = share of samples where the classifier's argmax_c (W h + b)_c differs from the
    nearest class mean argmin_c |h - mu_c|. NC3 and NC4 need the classifier weights.
    """
    classes, y_idx = np.unique(y, return_inverse=True)
    c = len(classes)
    n, d = h.shape
    counts = np.bincount(y_idx, minlength=c).astype(np.float64)
    means = np.zeros((c, d))
    np.add.at(means, y_idx, h)
    means /= counts[:, None]
    global_mean = h.mean(axis=0)
    m = means - global_mean
    within = h - means[y_idx]
    sigma_w = within.T @ within / n
    sigma_b = m.T @ m / c
    if not np.linalg.norm(sigma_b) > 0:
        raise DatasetError("neural-collapse: every class has the same mean feature; "
                           "the between-class covariance is zero and NC1 is undefined")
    out: dict[str, float] = {}
    out["nc1"] = float(np.trace(sigma_w @ np.linalg.pinv(sigma_b, hermitian=True)) / c)
    gram = m @ m.T
    etf = (np.eye(c) - np.ones((c, c)) / c) / np.sqrt(c - 1)
    out["nc2"] = float(np.linalg.norm(gram / np.linalg.norm(gram) - etf))
    norms = np.linalg.norm(m, axis=1)
    out["equinorm"] = float(norms.std() / norms.mean())
    cos = gram / np.outer(norms, norms)
    pairs = np.triu_indices(c, k=1)
    out["equiangle"] = float(np.mean(np.abs(cos[pairs] + 1.0 / (c - 1))))
    if w is not None:
        out["nc3"] = float(np.linalg.norm(w / np.linalg.norm(w) - m / np.linalg.norm(m)) ** 2)
        logits = h @ w.T + (0.0 if b is None else b)
        classifier = logits.argmax(axis=1)
        distances = (np.einsum("nd,nd->n", h, h)[:, None] - 2 * h @ means.T
                     + np.einsum("cd,cd->c", means, means)[None, :])
        nearest = distances.argmin(axis=1)
        out["nc4"] = float(np.mean(classifier != nearest))
    return out


class NeuralCollapse:
    """Neural collapse NC1-NC4 (Papyan, Han and Donoho 2020) of last-layer features, per step.

    Features ``hidden (sample, dim)`` with ``labels (sample)``; NC3 and NC4 also need the
    classifier weights ``weight_variable (class, dim)`` (rows in the order of the sorted labels)
    and optionally a bias. See :func:`collapse_metrics` for the formulas. All four tend to 0 as
    a network collapses to a simplex ETF.
    """

    name = "neural-collapse"

    def __init__(self, variable: str | None = None, labels: str = "labels",
                 weight_variable: str | None = None, bias_variable: str | None = None) -> None:
        self.variable, self.labels = variable, labels
        self.weight_variable, self.bias_variable = weight_variable, bias_variable

    def __call__(self, ds: xr.Dataset) -> xr.Dataset:
        da = pick_variable(ds, self.variable, ["hidden", "features"], self.name)
        check_dims(da, 2, self.name, "(sample, dim)")
        da = drop_unrecorded_steps(da, self.name)
        sample_dim = [d for d in da.dims if d != STEP][0]
        if not isinstance(ds, xr.Dataset) or self.labels not in ds.variables:
            raise DatasetError(f"{self.name}: no {self.labels!r} variable (one class per sample); "
                               "set labels= to it")
        y = np.asarray(ds[self.labels].values)
        if ds[self.labels].dims != (sample_dim,):
            raise DatasetError(f"{self.name}: {self.labels!r} has dims {ds[self.labels].dims}; "
                               f"expected ({sample_dim!r},)")
        classes = np.unique(y)
        if len(classes) < 2:
            raise DatasetError(f"{self.name}: {self.labels!r} holds {len(classes)} class; "
                               "neural collapse needs at least 2")
        values = as_float(da, self.name)
        weights = self._optional(ds, self.weight_variable, da, 2)
        bias = self._optional(ds, self.bias_variable, da, 1)
        if weights is not None and weights.shape[-2:] != (len(classes), da.shape[-1]):
            raise DatasetError(f"{self.name}: {self.weight_variable!r} has shape {weights.shape}; "
                               f"expected (class, dim) = ({len(classes)}, {da.shape[-1]})")
        step_count = da.sizes.get(STEP)
        counter = iter(range(step_count or 1))

        def kernel(h: np.ndarray) -> xr.Dataset:
            i = next(counter)
            w = None if weights is None else (weights[i] if weights.ndim == 3 else weights)
            b = None if bias is None else (bias[i] if bias.ndim == 2 else bias)
            metrics = collapse_metrics(h, y, w, b)
            return xr.Dataset({k: ((), v) for k, v in metrics.items()})

        result = per_step(da.copy(data=values), kernel)
        meanings = {
            "nc1": "within-class variability: tr(Sigma_W Sigma_B^+)/C",
            "nc2": "distance of class-mean Gram matrix to a simplex ETF",
            "equinorm": "std/mean of centred class-mean norms",
            "equiangle": "mean |cos + 1/(C-1)| over class-mean pairs",
            "nc3": "||W/||W|| - M/||M||||_F^2 (classifier vs class means)",
            "nc4": "share of samples where classifier and nearest class mean disagree",
        }
        for key, text in meanings.items():
            if key in result:
                result[key].attrs.update(long_name=key.upper() if key.startswith("nc") else key,
                                         units="1", description=text)
        if weights is None:
            result.attrs["note"] = "nc3 and nc4 need weight_variable (classifier rows (class, dim))"
        result.attrs["n_classes"] = len(classes)
        return finish(result, self.name, vars(self), str(da.name))

    def _optional(self, ds, name, da, ndim) -> np.ndarray | None:
        if name is None:
            return None
        if name not in ds.variables:
            raise DatasetError(f"{self.name}: no variable {name!r} in the dataset")
        var = ds[name]
        if STEP in var.dims and STEP in da.dims and STEP in var.coords and STEP in da.coords:
            var = var.sel({STEP: da[STEP].values})  # the steps kept for the features
        if STEP in var.dims and STEP in da.dims and var.sizes[STEP] != da.sizes[STEP]:
            raise DatasetError(f"{self.name}: {name!r} and {da.name!r} have different step counts")
        if var.ndim - (STEP in var.dims) != ndim:
            raise DatasetError(f"{self.name}: {name!r} has dims {var.dims}; expected {ndim} "
                               "dim(s) besides 'step'")
        return as_float(var, self.name)

    def plot(self, result: xr.Dataset):
        """NC1-NC4 over steps on a log scale."""
        fig, (ax,) = figure(1)
        for key in ("nc1", "nc2", "nc3", "nc4"):
            if key in result:
                plot_over_steps(ax, result, key, label=key.upper())
        ax.set_yscale("symlog", linthresh=1e-3)
        ax.set_ylabel("collapse metric")
        ax.legend()
        ax.set_title("neural collapse")
        return fig
