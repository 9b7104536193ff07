"""Diffusion spectral entropy and mutual information (DSE, DSMI).

Liao, Liu et al. 2023, "Assessing Neural Network Representations During Training Using
Noise-Resilient Diffusion Spectral Entropy" (arXiv 2312.04823). Defaults follow the authors'
reference package (``dse-dsmi`` 1.1): Gaussian kernel bandwidth sigma = 10, diffusion time
t = 1, at most 10,000 points (a seeded random subset beyond that), entropy in bits, DSMI with
5 repetitions and 10 bins for a continuous scalar reference.
"""

from __future__ import annotations

import math
import random

import numpy as np
import scipy.linalg
import xarray as xr
from overtone import ConfigError, DatasetError
from overtone.runschema import REPRESENTATIONS, STEP, drop_unrecorded_steps, pick_variable

from overtone_dynamics._common import (
    as_float,
    check_dims,
    figure,
    finish,
    per_step,
    plot_over_steps,
)


def diffusion_kernel(x: np.ndarray, sigma: float = 10.0, dtype: type = np.float64) -> np.ndarray:
    """The symmetric diffusion kernel K = D^-1/2 G D^-1/2 of points ``x`` (n, d).

    G_ij = exp(-||x_i - x_j||^2 / (2 sigma^2)) (the Gaussian's constant factor cancels in the
    normalisation), D = diag(sum_j G_ij). K is similar to the row-stochastic diffusion matrix
    P = D^-1 G (K = D^1/2 P D^-1/2), so it has P's eigenvalues; they lie in [0, 1] since G is
    positive semi-definite.
    """
    x = np.asarray(x, dtype=dtype)
    sq = np.einsum("ij,ij->i", x, x)
    gram = x @ x.T
    gram *= -2.0
    gram += sq[:, None]
    gram += sq[None, :]
    np.maximum(gram, 0.0, out=gram)
    gram *= -1.0 / (2.0 * sigma**2)
    np.exp(gram, out=gram)
    scale = 1.0 / np.sqrt(gram.sum(axis=1))
    gram *= scale[:, None]
    gram *= scale[None, :]
    return gram


def spectral_entropy(eigenvalues: np.ndarray, t: float = 1.0, base: float = 2.0) -> float:
    """H = -sum_i p_i log p_i with p_i = |lambda_i|^t / sum_j |lambda_j|^t (log to ``base``)."""
    mag = np.abs(np.asarray(eigenvalues, dtype=np.float64)) ** t
    total = mag.sum()
    if not total > 0:
        raise DatasetError("spectral entropy: every eigenvalue is zero; the entropy is undefined")
    p = mag[mag > 0] / total
    return float(-np.sum(p * np.log(p)) / math.log(base))


def _lanczos_quadrature(apply, start: np.ndarray, n_steps: int):
    """Gauss quadrature nodes and weights of v^T f(A) v for each unit column v of ``start``.

    Independent Lanczos runs (full reorthogonalisation) sharing one product ``apply(V)`` per
    step. Returns (nodes, weights), each (columns, steps): v^T f(A) v is approximately
    sum_k weights[:, k] f(nodes[:, k]). A run that breaks down (its Krylov space is
    invariant) continues with zero vectors, which carry zero weight.
    """
    n, m = start.shape
    steps = min(n_steps, n)
    basis = np.zeros((steps, n, m), dtype=start.dtype)
    alpha = np.zeros((m, steps))
    beta = np.zeros((m, max(steps - 1, 0)))
    basis[0] = start
    for j in range(steps):
        w = apply(basis[j])
        alpha[:, j] = np.einsum("np,np->p", basis[j], w)
        for _ in range(2):  # full reorthogonalisation, twice is enough
            coef = np.einsum("snp,np->sp", basis[: j + 1], w)
            w -= np.einsum("snp,sp->np", basis[: j + 1], coef)
        if j + 1 == steps:
            break
        norm = np.sqrt(np.einsum("np,np->p", w, w))
        alive = norm > 1e-7 * max(1.0, float(np.max(np.abs(alpha[:, : j + 1]))))
        beta[:, j] = np.where(alive, norm, 0.0)
        basis[j + 1] = np.where(alive, w / np.where(alive, norm, 1.0), 0.0)
    nodes = np.zeros((m, steps))
    weights = np.zeros((m, steps))
    for i in range(m):
        theta, vectors = scipy.linalg.eigh_tridiagonal(alpha[i], beta[i])
        nodes[i] = theta
        weights[i] = vectors[0] ** 2
    return nodes, weights


def _slq_traces(kernel: np.ndarray, functions, *, probes: int, steps: int, deflate: int,
                seed: int) -> list[float]:
    """tr f(K) for each f in ``functions`` by deflated stochastic Lanczos quadrature.

    The top ``deflate`` eigenpairs are approximated by subspace iteration (basis Q, Ritz
    values theta); tr f(K) ~ sum_i f(theta_i) + tr f(P K P), P = I - Q Q^T, the latter by
    Hutchinson's estimator with Rademacher probes projected by P and Lanczos quadrature
    (Hutch++-style deflation: the few large eigenvalues that dominate the estimator's
    variance are taken out of it; f(0) = 0 is assumed).
    """
    n = kernel.shape[0]
    rng = np.random.default_rng(seed)
    totals = [0.0 for _ in functions]
    k = min(deflate, n - 1)
    q = np.zeros((n, 0), dtype=kernel.dtype)
    if k > 0:
        q = rng.normal(size=(n, k + 8)).astype(kernel.dtype)
        for _ in range(4):
            q, _ = np.linalg.qr(kernel @ q)
        small = q.T @ (kernel @ q)
        ritz, vecs = np.linalg.eigh((small + small.T) / 2)
        order = np.argsort(ritz)[::-1][:k]
        q = q @ vecs[:, order]
        for i, f in enumerate(functions):
            totals[i] += float(np.sum(f(ritz[order].astype(np.float64))))

    def apply(v: np.ndarray) -> np.ndarray:
        w = kernel @ v
        return w - q @ (q.T @ w) if k > 0 else w

    z = rng.choice(np.array([-1.0, 1.0], dtype=kernel.dtype), size=(n, probes))
    z -= q @ (q.T @ z)
    norms2 = np.einsum("np,np->p", z, z).astype(np.float64)
    nodes, weights = _lanczos_quadrature(apply, z / np.sqrt(norms2).astype(kernel.dtype), steps)
    for i, f in enumerate(functions):
        per_probe = np.sum(weights * f(nodes), axis=1)
        totals[i] += float(np.mean(norms2 * per_probe))
    return totals


def diffusion_spectral_entropy(
    x: np.ndarray,
    sigma: float = 10.0,
    t: float = 1.0,
    *,
    method: str = "exact",
    precision: str = "float64",
    base: float = 2.0,
    probes: int = 32,
    lanczos_steps: int = 40,
    deflate: int = 64,
    seed: int = 0,
) -> float:
    """Diffusion spectral entropy of points ``x`` (n, d).

    DSE = -sum_i p_i log p_i, p_i = |lambda_i|^t / sum_j |lambda_j|^t, over the eigenvalues
    lambda_i of the diffusion matrix P = D^-1 G built from a Gaussian kernel G of bandwidth
    ``sigma`` (see :func:`diffusion_kernel`). In bits for ``base=2`` (the reference's unit).

    ``method="exact"`` takes every eigenvalue (LAPACK, O(n^3)). ``method="lanczos"`` estimates
    the two traces in DSE = log S - (1/S) tr(K^t log K^t), S = tr(K^t), by stochastic Lanczos
    quadrature after deflating the ``deflate`` largest eigenvalues (``probes`` Rademacher
    vectors, ``lanczos_steps`` steps; see :func:`_slq_traces`): O(n^2) per matrix product, an
    approximation whose error the benchmark reports.
    Closed forms: n points far apart (K = I) give log n; k tight, well-separated clusters give
    log k; identical points give 0.
    """
    dtype = {"float64": np.float64, "float32": np.float32}[precision]
    kernel = diffusion_kernel(x, sigma, dtype)
    if method == "exact":
        eig = scipy.linalg.eigh(kernel, eigvals_only=True, overwrite_a=True, check_finite=False,
                                driver="evd")
        return spectral_entropy(eig, t, base)
    if method != "lanczos":
        raise ConfigError(f"dse: method = {method!r}; allowed: 'exact', 'lanczos'")
    n = kernel.shape[0]

    def power(lam: np.ndarray) -> np.ndarray:
        return np.abs(lam) ** t

    def power_log(lam: np.ndarray) -> np.ndarray:
        mag = np.abs(lam) ** t
        return np.where(mag > 0, mag * np.log(np.where(mag > 0, mag, 1.0)), 0.0)

    s, tr_mlog = _slq_traces(kernel, [power, power_log], probes=probes, steps=lanczos_steps,
                             deflate=deflate, seed=seed)
    if t == 1:  # tr K is known exactly
        s = float(np.trace(kernel, dtype=np.float64))
    entropy = math.log(s) - tr_mlog / s
    return float(min(max(entropy, 0.0), math.log(n)) / math.log(base))


def subsample_indices(n: int, max_samples: int | None, seed: int | None) -> np.ndarray:
    """Indices of at most ``max_samples`` of ``n`` points, drawn like the reference code.

    The reference draws ``random.sample(range(n), k)`` from Python's generator seeded with
    ``seed``; doing the same keeps the two side by side on one subset.
    """
    if max_samples is None or n <= max_samples:
        return np.arange(n)
    rng = random.Random(seed)
    return np.array(rng.sample(range(n), k=max_samples))


def _check_common(name: str, sigma: float, t: float, max_samples: int | None, base: float) -> None:
    if not sigma > 0:
        raise ConfigError(f"{name}: sigma = {sigma}; the kernel bandwidth must be positive")
    if not t > 0:
        raise ConfigError(f"{name}: t = {t}; the diffusion time must be positive")
    if max_samples is not None and max_samples < 2:
        raise ConfigError(f"{name}: max_samples = {max_samples}; it must be at least 2")
    if not base > 1:
        raise ConfigError(f"{name}: base = {base}; the logarithm base must exceed 1")


def _unit(base: float) -> str:
    return {2.0: "bits", math.e: "nats", 10.0: "hartleys"}.get(float(base), f"log base {base}")


class DSE:
    """Diffusion spectral entropy of representations (sample, dim), per step.

    DSE = -sum_i p_i log p_i with p_i = |lambda_i|^t / sum_j |lambda_j|^t, lambda_i the
    eigenvalues of the diffusion matrix of a Gaussian kernel (bandwidth ``sigma``) on the
    samples; see :func:`diffusion_spectral_entropy`. Defaults as in the reference code.
    """

    name = "dse"

    def __init__(self, variable: str | None = None, sigma: float = 10.0, t: float = 1.0,
                 max_samples: int | None = 10000, seed: int = 0, method: str = "exact",
                 precision: str = "float64", base: float = 2.0) -> None:
        _check_common(self.name, sigma, t, max_samples, base)
        if method not in ("exact", "lanczos"):
            raise ConfigError(f"{self.name}: method = {method!r}; allowed: 'exact', 'lanczos'")
        if precision not in ("float64", "float32"):
            raise ConfigError(f"{self.name}: precision = {precision!r}; allowed: 'float64', 'float32'")
        self.variable, self.sigma, self.t = variable, sigma, t
        self.max_samples, self.seed, self.method = max_samples, seed, method
        self.precision, self.base = precision, base

    def __call__(self, ds: xr.Dataset) -> xr.Dataset:
        da = pick_variable(ds, self.variable, REPRESENTATIONS, self.name)
        check_dims(da, 2, self.name, "(sample, dim)")
        da = drop_unrecorded_steps(da, self.name)
        values = as_float(da, self.name)
        n = da.sizes[[d for d in da.dims if d != STEP][0]]
        if n < 2:
            raise DatasetError(f"{self.name}: {n} sample(s); DSE needs at least 2")
        index = subsample_indices(n, self.max_samples, self.seed)

        def kernel(x: np.ndarray) -> xr.Dataset:
            h = diffusion_spectral_entropy(x[index], self.sigma, self.t, method=self.method,
                                           precision=self.precision, base=self.base, seed=self.seed)
            return xr.Dataset({"dse": ((), h)})

        result = per_step(da.copy(data=values), kernel)
        result["dse"].attrs.update(
            long_name="diffusion spectral entropy", units=_unit(self.base),
            description="-sum p log p, p_i = |lambda_i|^t / sum |lambda|^t of the diffusion matrix")
        result.attrs.update(n_samples=len(index), max_entropy=math.log(len(index), self.base))
        return finish(result, self.name, vars(self), str(da.name))

    def plot(self, result: xr.Dataset):
        """DSE over steps."""
        fig, (ax,) = figure(1)
        plot_over_steps(ax, result, "dse")
        ax.set_title(f"DSE (max log n = {result.attrs.get('max_entropy', float('nan')):.2f})")
        return fig


def diffusion_spectral_mutual_information(
    x: np.ndarray,
    groups: np.ndarray,
    sigma: float = 10.0,
    t: float = 1.0,
    *,
    repetitions: int = 5,
    seed: int = 0,
    base: float = 2.0,
    method: str = "exact",
    max_samples: int | None = 10000,
) -> tuple[float, np.ndarray, np.ndarray]:
    """DSMI between points ``x`` (n, d) and a discrete variable ``groups`` (n,).

    DSMI = DSE(X) - DSE(X | Y) = sum_c p(c) [DSE(X*_c) - DSE(X | Y = c)], where X*_c is a
    random subset of X as large as class c (averaged over ``repetitions`` draws, like the
    reference, so both entropies are measured on equally many points). Each DSE uses at most
    ``max_samples`` points (the reference's per-call subsample). Returns the DSMI and, per
    class, DSE(X | Y = c) and the mean DSE(X*_c).
    """
    classes, counts = np.unique(groups, return_counts=True)
    conditional = np.zeros(len(classes))
    marginal = np.zeros(len(classes))
    n = len(groups)

    def entropy(points: np.ndarray) -> float:
        if len(points) < 2:
            return 0.0
        points = points[subsample_indices(len(points), max_samples, seed)]
        return diffusion_spectral_entropy(points, sigma, t, method=method, base=base, seed=seed)

    for i, c in enumerate(classes):
        conditional[i] = entropy(x[groups == c])
        rng = random.Random(seed)
        draws = [entropy(x[np.array(rng.sample(range(n), k=int(counts[i])))])
                 for _ in range(repetitions)]
        marginal[i] = float(np.mean(draws))
    dsmi = float(np.sum(counts / n * (marginal - conditional)))
    return dsmi, conditional, marginal


def bin_scalar(values: np.ndarray, n_bins: int) -> np.ndarray:
    """Equal-width bins 1..n_bins of a continuous scalar after min-max scaling to [0, 1].

    Bin i holds [(i - 1)/n_bins, i/n_bins), the last one closed at 1 (the reference's binning:
    ``digitize`` against the left edges ``linspace(0, 1, n_bins + 1)[:-1]``)."""
    lo, hi = float(values.min()), float(values.max())
    if hi == lo:
        raise DatasetError("dsmi: the reference variable is constant; mutual information with "
                           "a constant is zero by definition and its bins are undefined")
    scaled = (values - lo) / (hi - lo)
    return np.digitize(scaled, np.linspace(0.0, 1.0, n_bins + 1)[:-1])


class DSMI:
    """Diffusion spectral mutual information between representations and labels, per step.

    DSMI(X; Y) = DSE(X) - DSE(X | Y), estimated per class as in the reference
    (:func:`diffusion_spectral_mutual_information`). Integer labels are classes; a float
    reference of one value per sample is cut into ``n_bins`` equal-width bins first.
    """

    name = "dsmi"

    def __init__(self, variable: str | None = None, labels: str = "labels", sigma: float = 10.0,
                 t: float = 1.0, repetitions: int = 5, n_bins: int = 10,
                 reference: str = "auto", max_samples: int | None = 10000, seed: int = 0,
                 method: str = "exact", base: float = 2.0) -> None:
        _check_common(self.name, sigma, t, max_samples, base)
        if repetitions < 1 or n_bins < 2:
            raise ConfigError(f"{self.name}: repetitions must be >= 1 and n_bins >= 2")
        if reference not in ("auto", "discrete", "continuous"):
            raise ConfigError(f"{self.name}: reference = {reference!r}; allowed: 'auto', "
                              "'discrete', 'continuous'")
        if method not in ("exact", "lanczos"):
            raise ConfigError(f"{self.name}: method = {method!r}; allowed: 'exact', 'lanczos'")
        self.variable, self.labels, self.sigma, self.t = variable, labels, sigma, t
        self.repetitions, self.n_bins, self.reference = repetitions, n_bins, reference
        self.max_samples, self.seed, self.method, self.base = max_samples, seed, method, base

    def __call__(self, ds: xr.Dataset) -> xr.Dataset:
        da = pick_variable(ds, self.variable, REPRESENTATIONS, self.name)
        check_dims(da, 2, self.name, "(sample, dim)")
        da = drop_unrecorded_steps(da, self.name)
        sample_dim = [d for d in da.dims if d != STEP][0]
        if not isinstance(ds, xr.Dataset) or self.labels not in ds.variables:
            raise DatasetError(f"{self.name}: no {self.labels!r} variable with one label per "
                               f"{sample_dim!r}; set labels= to it")
        lab = ds[self.labels]
        if lab.dims != (sample_dim,):
            raise DatasetError(f"{self.name}: {self.labels!r} has dims {lab.dims}; expected "
                               f"({sample_dim!r},) like {da.name!r}")
        raw = np.asarray(lab.values)
        discrete = (self.reference == "discrete" or
                    (self.reference == "auto" and not np.issubdtype(raw.dtype, np.floating)))
        if not discrete:
            check = np.asarray(raw, dtype=np.float64)
            if not np.all(np.isfinite(check)):
                raise DatasetError(f"{self.name}: {self.labels!r} has NaN or infinite values")
            groups = bin_scalar(check, self.n_bins)
        else:
            groups = raw
        values = as_float(da, self.name)
        classes = np.unique(groups)
        if len(classes) < 2:
            raise DatasetError(f"{self.name}: {self.labels!r} has a single value; mutual "
                               "information needs at least two classes")

        def kernel(x: np.ndarray) -> xr.Dataset:
            mi, cond, marg = diffusion_spectral_mutual_information(
                x, groups, self.sigma, self.t, repetitions=self.repetitions, seed=self.seed,
                base=self.base, method=self.method, max_samples=self.max_samples)
            return xr.Dataset({"dsmi": ((), mi), "conditional_dse": ("class", cond),
                               "subset_dse": ("class", marg)})

        result = per_step(da.copy(data=values), kernel)
        result = result.assign_coords({"class": classes})
        unit = _unit(self.base)
        result["dsmi"].attrs.update(long_name="diffusion spectral mutual information", units=unit,
                                    description="sum_c p(c) [DSE(random subset of size n_c) - DSE(X | Y=c)]")
        result["conditional_dse"].attrs.update(long_name="DSE within class", units=unit)
        result["subset_dse"].attrs.update(long_name="DSE of random subsets of class size", units=unit)
        result.attrs.update(n_samples=len(groups), reference_kind="discrete" if discrete else "binned")
        return finish(result, self.name, vars(self), str(da.name))

    def plot(self, result: xr.Dataset):
        """DSMI over steps."""
        fig, (ax,) = figure(1)
        plot_over_steps(ax, result, "dsmi")
        ax.set_title("DSMI between representations and labels")
        return fig
