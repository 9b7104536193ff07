"""Benchmark of overtone-dynamics against reference implementations, measured in one run.

1. Diffusion spectral entropy on N x 256 representations (default N = 10,000): the authors'
   reference package ``dse-dsmi`` (``pip install dse-dsmi``; skipped with a note if absent)
   against our exact float64 and float32 paths and the stochastic Lanczos approximation.
2. Scaling-law fits on data drawn from published laws with 1% noise: our Huber/L-BFGS fit
   against ``scipy.optimize.curve_fit`` (least squares on log L), time and parameter error.

Prints a markdown table to paste into docs/dynamics.md:

    python benchmarks/bench_dynamics.py [--n 10000] [--dim 256] [--no-reference]
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import platform
import time

import numpy as np
import scipy.optimize
import xarray as xr
from overtone_dynamics.diffusion import diffusion_spectral_entropy, subsample_indices
from overtone_dynamics.scaling import FORMS, ScalingLaw, fit_law


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    value = function(*args, **kwargs)
    return value, time.perf_counter() - start


def representations(kind: str, n: int, dim: int, seed: int = 0) -> np.ndarray:
    """``uniform``: U(0, 1) (the reference's own demo); ``clusters``: 10 Gaussian clusters
    (centres N(0, 3^2), spread 0.5) so that the default sigma = 10 sees structure."""
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        return rng.uniform(0, 1, (n, dim))
    centres = 3.0 * rng.normal(size=(10, dim))
    return centres[rng.integers(0, 10, n)] + 0.5 * rng.normal(size=(n, dim))


def bench_dse(n: int, dim: int, reference: bool) -> list[list[str]]:
    rows = []
    have_reference = reference and importlib.util.find_spec("dse_dsmi") is not None
    for kind in ("clusters", "uniform"):
        x = representations(kind, n, dim)
        x = x[subsample_indices(len(x), 10000, 0)]
        results = {}
        if have_reference:
            from dse_dsmi import diffusion_spectral_entropy as peer

            results["reference dse-dsmi 1.1 (float64, exact)"] = timed(peer, x)
        results["overtone exact float64"] = timed(diffusion_spectral_entropy, x)
        results["overtone exact float32"] = timed(diffusion_spectral_entropy, x, precision="float32")
        results["overtone lanczos float32 (deflate 64, 32 probes, 40 steps)"] = timed(
            diffusion_spectral_entropy, x, method="lanczos", precision="float32")
        truth_name = next(iter(results))
        truth, truth_time = results[truth_name]
        for name, (value, seconds) in results.items():
            rows.append([f"DSE {kind} {n}x{dim}", name, f"{value:.6f}", f"{value - truth:+.1e}",
                         f"{seconds:.1f}", f"{truth_time / seconds:.2f}x"])
            print(f"  {rows[-1]}", flush=True)
    if reference and not have_reference:
        rows.append(["DSE", "reference dse-dsmi not installed: rows compare with our float64 path",
                     "", "", "", ""])
    return rows


def chinchilla_data(seed: int = 0, noise: float = 0.01):
    rng = np.random.default_rng(seed)
    truth = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
    nn, dd = np.meshgrid(np.geomspace(7e7, 1.6e10, 8), np.geomspace(5e9, 5e11, 8), indexing="ij")
    loss = truth["E"] + truth["A"] / nn ** truth["alpha"] + truth["B"] / dd ** truth["beta"]
    loss = loss * np.exp(noise * rng.normal(size=loss.shape))
    return truth, nn.ravel(), dd.ravel(), loss.ravel()


def power_data(seed: int = 0, noise: float = 0.01):
    rng = np.random.default_rng(seed)
    truth = {"L_inf": 2.0, "x0": 1e5, "alpha": 0.3}
    x = np.geomspace(1e3, 1e9, 40)
    loss = (truth["L_inf"] + (truth["x0"] / x) ** truth["alpha"]) * np.exp(noise * rng.normal(size=40))
    return truth, x, loss


def rel_errors(estimate, truth: dict) -> np.ndarray:
    return np.abs(np.asarray(estimate, dtype=float) / np.array(list(truth.values())) - 1)


def wrong_basin(errors: np.ndarray, truth: dict) -> bool:
    """A fit counts as failed when the asymptote (E or L_inf) is off by more than 25% or an
    exponent by more than 50% (A, B and x0 are poorly identified even in good fits)."""
    named = dict(zip(truth, errors))
    asymptote = named.get("E", named.get("L_inf"))
    exponents = [named[k] for k in ("alpha", "beta") if k in named]
    return bool(asymptote > 0.25 or max(exponents) > 0.5)


def _fit_row(label, name, errors, fails, times, repeats, reference_time, truth):
    errors = np.array(errors) if errors else np.full((1, len(truth)), np.nan)
    cells = " / ".join(f"{v:.3f}" for v in np.median(errors, axis=0))
    return [label, name, cells, f"{fails} / {repeats}", f"{1e3 * np.median(times):.1f} ms",
            f"{np.median(times) / reference_time:.3f}x"]


def _compare(label, form, truth_names, data, peer_model, peer_starts, repeats):
    rows = []
    ours_err, ours_t, ours_fails = [], [], 0
    peer = {name: ([], 0, []) for name in peer_starts}
    for seed in range(repeats):
        truth, inputs, loss = data(seed)
        (theta, _, _), seconds = timed(fit_law, form, inputs, loss)
        ours_err.append(rel_errors(form.natural(theta), truth))
        ours_fails += wrong_basin(ours_err[-1], truth)
        ours_t.append(seconds)
        for name, p0 in peer_starts.items():
            errs, fails, times = peer[name]
            start = time.perf_counter()
            try:
                with np.errstate(all="ignore"):
                    fit, _ = scipy.optimize.curve_fit(peer_model, inputs.T, np.log(loss), p0=p0,
                                                      maxfev=20000)
                if not np.all(np.isfinite(fit)):
                    raise RuntimeError("non-finite fit")
                errs.append(rel_errors(fit, truth))
                if wrong_basin(errs[-1], truth):
                    fails += 1
            except (RuntimeError, ValueError):
                fails += 1
            times.append(time.perf_counter() - start)
            peer[name] = (errs, fails, times)
    reference = float(np.median(ours_t))
    rows.append(_fit_row(label, "overtone (Huber on log L, grid + L-BFGS)", ours_err, ours_fails, ours_t,
                         repeats, reference, truth))
    for name, (errs, fails, times) in peer.items():
        rows.append(_fit_row(label, f"scipy curve_fit (least squares on log L, p0 {name})", errs,
                             fails, times, repeats, reference, truth))
    return rows


def bench_scaling(repeats: int = 20) -> list[list[str]]:
    """Median relative error per parameter over ``repeats`` noisy data sets, and fit time."""

    def chinchilla(nd, e, a, b, alpha, beta):
        return np.log(e + a / nd[0] ** alpha + b / nd[1] ** beta)

    def power(x, l_inf, x0, alpha):
        return np.log(l_inf + (x0 / x[0]) ** alpha)

    def chin_data(seed):
        truth, n, d, loss = chinchilla_data(seed)
        return truth, np.column_stack([n, d]), loss

    def pow_data(seed):
        truth, x, loss = power_data(seed)
        return truth, x[:, None], loss

    rows = _compare("Chinchilla (E / A / B / alpha / beta), 64 points, 1% noise",
                    FORMS["chinchilla"], None, chin_data, chinchilla,
                    {"= ones (default)": None, "= (1, 100, 100, 0.3, 0.3)": [1.0, 100.0, 100.0, 0.3, 0.3]},
                    repeats)
    rows += _compare("Henighan (L_inf / x0 / alpha), 40 points, 1% noise", FORMS["power"], None,
                     pow_data, power, {"= ones (default)": None, "= (1, 1e3, 0.5)": [1.0, 1e3, 0.5]},
                     repeats)
    # the whole analyzer with 200 bootstrap resamples
    truth, n, d, loss = chinchilla_data(0)
    ds = xr.Dataset({"loss": ("run", loss), "N": ("run", n), "D": ("run", d)})
    result, seconds = timed(ScalingLaw(n="N", d="D", n_bootstrap=200), ds)
    inside = sum(float(result["ci_low"].sel(parameter=k)) <= v <= float(result["ci_high"].sel(parameter=k))
                 for k, v in truth.items())
    cells = " / ".join(f"{v:.3f}" for v in rel_errors(result["estimate"].values, truth))
    rows.append(["Chinchilla analyzer with 200 bootstrap resamples (seed 0)", "overtone scaling-law",
                 cells, f"truth inside {inside}/5 intervals", f"{seconds:.1f} s", ""])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--no-reference", action="store_true", help="skip the dse-dsmi package")
    parser.add_argument("--skip-dse", action="store_true")
    args = parser.parse_args()
    print(f"# bench_dynamics on {platform.processor() or platform.machine()}, "
          f"numpy {np.__version__}, scipy {scipy.__version__}", flush=True)
    if not args.skip_dse:
        rows = bench_dse(args.n, args.dim, not args.no_reference)
        print("\n| data | implementation | DSE (bits) | minus reference | seconds | speed vs reference |")
        print("|---|---|---|---|---|---|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
    rows = bench_scaling()
    print("\n| fit | implementation | median relative error per parameter | failed or wrong basin | median time | time / overtone |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(f"\nlog2(10) = {math.log2(10):.4f} (10 clusters)")


if __name__ == "__main__":
    main()
