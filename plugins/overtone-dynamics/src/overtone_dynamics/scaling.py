"""Scaling-law fits with bootstrap confidence intervals (``scaling-law``).

Two forms, both fitted in log space as a log-sum-exp of terms linear in the parameters:

* ``power`` (Henighan et al. 2020): L(x) = L_inf + (x0 / x)^alpha. With C = x0^alpha,
  log L = LSE(l, c - alpha log x), l = log L_inf, c = log C.
* ``chinchilla`` (Hoffmann et al. 2022, approach 3): L(N, D) = E + A / N^alpha + B / D^beta,
  log L = LSE(a - alpha log N, b - beta log D, e), a = log A, b = log B, e = log E.

The objective is Hoffmann et al.'s: the sum over points of Huber_delta(predicted log L - log L)
with delta = 1e-3, minimised by L-BFGS. Like them we start from a grid of initial values; to
keep it fast the objective is evaluated on the whole grid and L-BFGS runs from its best
``n_starts`` points. Confidence intervals are percentile intervals of the estimates refitted on
``n_bootstrap`` resamples of the points (drawn with replacement, fixed seed).

A sweep's ``sweep.nc`` (dims ``(variant, seed, step)``, losses NaN between evaluations and
after a shorter run's end) is fitted on each member's final evaluation with ``last="step"``
(:func:`at_last`): one point per member, its ``step`` the step of that evaluation.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import scipy.optimize
import xarray as xr
from overtone import ConfigError, DatasetError
from scipy.special import logsumexp

from overtone_dynamics._common import check_finite, figure, finish


@dataclass(frozen=True)
class Form:
    """A law log L = LSE_k(features_k . theta) with its grid of starts and natural parameters."""

    name: str
    formula: str
    raw_names: tuple[str, ...]
    natural_names: tuple[str, ...]
    grid: tuple[tuple[float, ...], ...]

    def features(self, inputs: np.ndarray) -> np.ndarray:
        """(terms, points, params) with term_k = features[k] @ theta."""
        n = inputs.shape[0]
        zeros, ones = np.zeros(n), np.ones(n)
        if self.name == "power":
            log_x = np.log(inputs[:, 0])
            # theta = (l, c, alpha): terms l and c - alpha log x
            return np.stack([np.stack([ones, zeros, zeros], 1),
                             np.stack([zeros, ones, -log_x], 1)])
        log_n, log_d = np.log(inputs[:, 0]), np.log(inputs[:, 1])
        # theta = (a, b, e, alpha, beta)
        return np.stack([np.stack([ones, zeros, zeros, -log_n, zeros], 1),
                         np.stack([zeros, ones, zeros, zeros, -log_d], 1),
                         np.stack([zeros, zeros, ones, zeros, zeros], 1)])

    def natural(self, theta: np.ndarray) -> np.ndarray:
        """Parameters in the law's own terms from the log-space ones."""
        theta = np.asarray(theta, dtype=np.float64)
        if self.name == "power":
            log_inf, c, alpha = theta[..., 0], theta[..., 1], theta[..., 2]
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                x0 = np.exp(c / alpha)
            return np.stack([np.exp(log_inf), x0, alpha], axis=-1)
        a, b, e, alpha, beta = (theta[..., i] for i in range(5))
        with np.errstate(over="ignore"):  # a bootstrap refit may run off to A or B = inf
            return np.stack([np.exp(e), np.exp(a), np.exp(b), alpha, beta], axis=-1)

    def predict(self, theta: np.ndarray, inputs: np.ndarray) -> np.ndarray:
        """Predicted loss L at ``inputs`` (points, 1 or 2)."""
        return np.exp(logsumexp(np.einsum("kpj,j->kp", self.features(inputs), theta), axis=0))


FORMS = {
    "power": Form(
        "power", "L = L_inf + (x0 / x)^alpha", ("log_L_inf", "log_C", "alpha"),
        ("L_inf", "x0", "alpha"),
        (tuple(np.linspace(-3, 2, 6)), tuple(np.linspace(-5, 30, 8)), (0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0)),
    ),
    "chinchilla": Form(
        "chinchilla", "L = E + A / N^alpha + B / D^beta", ("log_A", "log_B", "log_E", "alpha", "beta"),
        ("E", "A", "B", "alpha", "beta"),
        # Hoffmann et al.'s grid of initialisations
        (tuple(range(0, 30, 5)), tuple(range(0, 30, 5)), (-1.0, -0.5, 0.0, 0.5, 1.0),
         (0.0, 0.5, 1.0, 1.5, 2.0), (0.0, 0.5, 1.0, 1.5, 2.0)),
    ),
}


#: units of each form's parameters, in parameter order
PARAMETER_UNITS = {
    "power": "L_inf: {loss}; x0: units of {x}; alpha: 1",
    "chinchilla": "E: {loss}; A: {loss} x {n}^alpha; B: {loss} x {d}^beta; alpha, beta: 1",
}


def _objective(theta: np.ndarray, features: np.ndarray, log_loss: np.ndarray,
               delta: float, huber: bool) -> tuple[float, np.ndarray]:
    """Sum of Huber (or squared) residuals of log L and its gradient."""
    terms = np.einsum("kpj,j->kp", features, theta)  # (terms, points); einsum: no BLAS threads
    pred = logsumexp(terms, axis=0)
    r = pred - log_loss
    if huber:
        small = np.abs(r) <= delta
        value = float(np.sum(np.where(small, 0.5 * r**2, delta * (np.abs(r) - 0.5 * delta))))
        dr = np.clip(r, -delta, delta)
    else:
        value = float(np.sum(0.5 * r**2))
        dr = r
    weights = np.exp(terms - pred[None, :])  # softmax over terms
    grad = np.einsum("kp,kpj,p->j", weights, features, dr)
    return value, grad


def _grid_values(form: Form, features: np.ndarray, log_loss: np.ndarray, delta: float,
                 huber: bool) -> tuple[np.ndarray, np.ndarray]:
    starts = np.array(list(itertools.product(*form.grid)), dtype=np.float64)
    values = np.empty(len(starts))
    for lo in range(0, len(starts), 512):
        block = starts[lo:lo + 512]
        terms = np.einsum("kpj,sj->skp", features, block)
        r = logsumexp(terms, axis=1) - log_loss[None, :]
        if huber:
            a = np.abs(r)
            values[lo:lo + 512] = np.sum(np.where(a <= delta, 0.5 * r**2, delta * (a - 0.5 * delta)), axis=1)
        else:
            values[lo:lo + 512] = np.sum(0.5 * r**2, axis=1)
    return starts, values


def fit_law(form: Form, inputs: np.ndarray, loss: np.ndarray, *, delta: float = 1e-3,
            huber: bool = True, starts: np.ndarray | None = None,
            n_starts: int = 10) -> tuple[np.ndarray, float, bool]:
    """Minimise the Huber loss of log L over the law's log-space parameters by L-BFGS.

    Starts from ``starts`` if given, else from the ``n_starts`` best points of the form's grid.
    Returns (theta, objective, converged).
    """
    with single_threaded_blas():
        return _fit_law(form, inputs, loss, delta=delta, huber=huber, starts=starts,
                        n_starts=n_starts)


def single_threaded_blas():
    """A context limiting BLAS to one thread: these fits are thousands of tiny operations, and
    BLAS worker threads spinning beside them make them several times slower on a busy machine."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def _fit_law(form: Form, inputs: np.ndarray, loss: np.ndarray, *, delta: float,
             huber: bool, starts: np.ndarray | None, n_starts: int) -> tuple[np.ndarray, float, bool]:
    features = form.features(inputs)
    log_loss = np.log(loss)
    if starts is None:
        grid, values = _grid_values(form, features, log_loss, delta, huber)
        starts = grid[np.argsort(values, kind="stable")[:n_starts]]
    best: tuple[np.ndarray, float, bool] | None = None
    for start in starts:
        res = scipy.optimize.minimize(_objective, start, args=(features, log_loss, delta, huber),
                                      jac=True, method="L-BFGS-B",
                                      options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-12})
        if np.all(np.isfinite(res.x)) and (best is None or res.fun < best[1]):
            best = (res.x, float(res.fun), bool(res.success))
    if best is None:
        raise DatasetError(f"scaling-law: no start of the {form.name} fit converged to finite values")
    return best


def at_last(ds: xr.Dataset, loss: str, dim: str = "step") -> xr.Dataset:
    """Every variable of ``ds`` at each member's last finite ``loss`` along ``dim``.

    For a sweep's ``(variant, seed, step)`` dataset this is each run's final evaluation: the
    result has dims ``(variant, seed)``, and the ``dim`` coordinate becomes a ``(variant,
    seed)`` coordinate holding the step of that evaluation (so ``d="step"`` is the training
    length). Variables without ``dim`` are unchanged; a member with no finite ``loss`` keeps
    NaN there (``dropna`` drops it).
    """
    if loss not in ds.variables:
        raise DatasetError(f"scaling-law: no variable {loss!r} to take the last value of; the dataset has "
                           f"{', '.join(map(str, ds.data_vars)) or '(none)'}; set loss= to the right name")
    if dim not in ds[loss].dims:
        raise DatasetError(f"scaling-law: last = {dim!r} is not a dim of {loss!r} (its dims: "
                           f"{', '.join(map(str, ds[loss].dims)) or 'none'}); set last= to one of them, or drop it")
    finite = np.isfinite(ds[loss]).astype(np.int8)
    size = ds.sizes[dim]
    backwards = finite.isel({dim: slice(None, None, -1)})
    index = (size - 1 - backwards.argmax(dim)).astype(np.int64)
    return ds.isel({dim: index})


class ScalingLaw:
    """Fit a scaling law to (x, loss) or (N, D, loss) points, with bootstrap intervals.

    ``form="power"`` fits L = L_inf + (x0 / x)^alpha (Henighan et al. 2020) to the variable or
    coordinate named by ``x``; ``form="chinchilla"`` fits L = E + A / N^alpha + B / D^beta
    (Hoffmann et al. 2022) to those named by ``n`` and ``d``; ``"auto"`` picks chinchilla
    when ``n`` and ``d`` are given. Every element of the broadcast variables is one point
    (so a sweep's (variant, seed) grid or a metrics file's steps both work). With ``last``
    (e.g. ``"step"``), each member's last finite loss along that dim is its one point
    (:func:`at_last`): a sweep's final evaluations. See the module docstring for the
    objective and the bootstrap.
    """

    name = "scaling-law"

    def __init__(self, form: str = "auto", x: str = "x", n: str | None = None, d: str | None = None,
                 loss: str = "loss", objective: str = "huber", delta: float = 1e-3,
                 n_starts: int = 10, n_bootstrap: int = 200, confidence: float = 0.95,
                 seed: int = 0, dropna: bool = False, last: str = "") -> None:
        if form not in ("auto", "power", "chinchilla"):
            raise ConfigError(f"{self.name}: form = {form!r}; allowed: 'auto', 'power', 'chinchilla'")
        if objective not in ("huber", "mse"):
            raise ConfigError(f"{self.name}: objective = {objective!r}; allowed: 'huber', 'mse'")
        if form == "auto":
            form = "chinchilla" if (n is not None and d is not None) else "power"
        if form == "chinchilla" and (n is None or d is None):
            raise ConfigError(f"{self.name}: form = 'chinchilla' needs n= and d= (the variables "
                              "holding parameter count and data size)")
        if not 0 < confidence < 1:
            raise ConfigError(f"{self.name}: confidence = {confidence}; it must lie in (0, 1)")
        if n_bootstrap < 0 or n_starts < 1 or not delta > 0:
            raise ConfigError(f"{self.name}: need n_bootstrap >= 0, n_starts >= 1 and delta > 0")
        self.form, self.x, self.n, self.d, self.loss = form, x, n, d, loss
        self.objective, self.delta, self.n_starts = objective, delta, n_starts
        self.n_bootstrap, self.confidence, self.seed, self.dropna = n_bootstrap, confidence, seed, dropna
        self.last = last

    def _points(self, ds: xr.Dataset) -> tuple[np.ndarray, np.ndarray, list[str]]:
        names = [self.x] if self.form == "power" else [self.n, self.d]
        names = [*names, self.loss]
        if not isinstance(ds, xr.Dataset):
            raise DatasetError(f"{self.name}: expected an xarray.Dataset, got {type(ds).__name__}")
        if self.last:
            ds = at_last(ds, self.loss, self.last)
        for name in names:
            if name not in ds.variables:
                raise DatasetError(
                    f"{self.name}: no variable or coordinate {name!r}; the dataset has "
                    f"{', '.join(map(str, ds.variables)) or '(none)'}; set "
                    f"{'x' if self.form == 'power' else 'n/d'}= and loss= to the right names")
        arrays = xr.broadcast(*[ds[name] for name in names])
        flat = np.stack([np.asarray(a.values, dtype=np.float64).ravel() for a in arrays], axis=1)
        finite = np.all(np.isfinite(flat), axis=1)
        if not finite.all():
            if not self.dropna:
                check_finite(flat, " / ".join(names), self.name)
            flat = flat[finite]
        if np.any(flat <= 0):
            bad = [names[j] for j in range(flat.shape[1]) if np.any(flat[:, j] <= 0)]
            raise DatasetError(f"{self.name}: {', '.join(bad)} must be positive (the fit works on "
                               "their logarithms); select the positive part first, e.g. "
                               "ds.sel(step=slice(1, None))")
        n_params = len(FORMS[self.form].raw_names)
        if len(flat) < n_params + 1:
            raise DatasetError(f"{self.name}: {len(flat)} point(s) for a {n_params}-parameter "
                               f"{self.form} fit; it needs at least {n_params + 1}")
        for j, name in enumerate(names):
            if np.ptp(flat[:, j]) == 0:
                raise DatasetError(f"{self.name}: {name!r} is constant ({flat[0, j]:g}) over all "
                                   "points; the law cannot be fitted")
        return flat[:, :-1], flat[:, -1], names

    def __call__(self, ds: xr.Dataset) -> xr.Dataset:
        form = FORMS[self.form]
        inputs, loss, names = self._points(ds)
        huber = self.objective == "huber"
        with single_threaded_blas():
            theta, value, converged = _fit_law(form, inputs, loss, delta=self.delta, huber=huber,
                                               starts=None, n_starts=self.n_starts)
            rng = np.random.default_rng(self.seed)
            boot_starts = theta[None, :]  # each resample starts from the full-data optimum
            boots = np.empty((self.n_bootstrap, len(theta)))
            for i in range(self.n_bootstrap):
                pick = rng.integers(0, len(loss), len(loss))
                boots[i] = _fit_law(form, inputs[pick], loss[pick], delta=self.delta,
                                    huber=huber, starts=boot_starts, n_starts=1)[0]
        natural = form.natural(theta)
        if not np.all(np.isfinite(natural)):
            bad = [n for n, v in zip(form.natural_names, natural) if not np.isfinite(v)]
            raise DatasetError(f"{self.name}: the best {form.name} fit has non-finite "
                               f"{', '.join(bad)} (a vanishing exponent): these data show no "
                               f"{form.formula} law; check x and loss")
        predicted = form.predict(theta, inputs)
        data_vars = {
            "estimate": ("parameter", natural),
            "observed": ("point", loss),
            "predicted": ("point", predicted),
            **{f"input_{name}": ("point", inputs[:, j]) for j, name in enumerate(names[:-1])},
        }
        coords = {"parameter": list(form.natural_names), "point": np.arange(len(loss))}
        if self.n_bootstrap:
            boot_natural = form.natural(boots)
            tail = (1 - self.confidence) / 2 * 100
            low, high = np.nanpercentile(boot_natural, [tail, 100 - tail], axis=0)
            data_vars.update(ci_low=("parameter", low), ci_high=("parameter", high),
                             bootstrap=(("resample", "parameter"), boot_natural))
            coords["resample"] = np.arange(self.n_bootstrap)
        result = xr.Dataset(data_vars, coords=coords)
        loss_units = ds[self.loss].attrs.get("units", "loss units")
        units = PARAMETER_UNITS[form.name].format(loss=loss_units, x=names[0],
                                                  n=names[0], d=names[1] if len(names) > 2 else "")
        result["estimate"].attrs.update(long_name="fitted parameter", units=units,
                                        description=form.formula)
        if self.n_bootstrap:
            level = f"{self.confidence:.0%}"
            result["ci_low"].attrs.update(long_name=f"{level} bootstrap interval, low end", units=units)
            result["ci_high"].attrs.update(long_name=f"{level} bootstrap interval, high end", units=units)
            result["bootstrap"].attrs.update(long_name="estimates on bootstrap resamples", units=units)
        result["observed"].attrs.update(long_name=f"observed {self.loss}", units=loss_units)
        result["predicted"].attrs.update(long_name=f"fitted {self.loss}", units=loss_units)
        for name in names[:-1]:
            result[f"input_{name}"].attrs.update(long_name=name,
                                                 units=ds[name].attrs.get("units", "1"))
        result.attrs.update(form=form.name, formula=form.formula, objective=self.objective,
                            objective_value=value, converged=int(converged), n_points=len(loss),
                            inputs=",".join(names[:-1]), loss=self.loss,
                            rmse_log=float(np.sqrt(np.mean((np.log(predicted) - np.log(loss)) ** 2))))
        for i, name in enumerate(form.natural_names):
            text = f"{natural[i]:.6g}"
            if self.n_bootstrap:
                text += f" [{result['ci_low'].values[i]:.6g}, {result['ci_high'].values[i]:.6g}]"
            result.attrs[f"fit_{name}"] = text
        return finish(result, self.name, vars(self), ",".join(names))

    def plot(self, result: xr.Dataset):
        """Data and fitted law on log-log axes, and fitted against observed loss."""
        fig, (ax1, ax2) = figure(2)
        inputs = result.attrs["inputs"].split(",")
        observed = result["observed"].values
        predicted = result["predicted"].values
        first = result[f"input_{inputs[0]}"].values
        est = dict(zip(result["parameter"].values, result["estimate"].values))
        if result.attrs["form"] == "power":
            ax1.loglog(first, observed, "o", ms=4, label="data")
            grid = np.geomspace(first.min(), first.max(), 200)
            ax1.loglog(grid, est["L_inf"] + (est["x0"] / grid) ** est["alpha"], "-",
                       label=f"fit: alpha = {est['alpha']:.3g}")
            ax1.axhline(est["L_inf"], ls=":", color="gray", label=f"L_inf = {est['L_inf']:.3g}")
        else:
            second = result[f"input_{inputs[1]}"].values
            points = ax1.scatter(first, observed, c=np.log10(second), s=14, cmap="viridis",
                                 label="data")
            ax1.scatter(first, predicted, marker="x", s=14, c="k", label="fit")
            ax1.set_xscale("log")
            ax1.set_yscale("log")
            fig.colorbar(points, ax=ax1, label=f"log10 {inputs[1]}")
        ax1.set_xlabel(inputs[0])
        ax1.set_ylabel(result.attrs["loss"])
        ax1.legend(fontsize=8)
        ax1.set_title(result.attrs["formula"])
        ax2.loglog(observed, predicted, ".")
        lims = [min(observed.min(), predicted.min()), max(observed.max(), predicted.max())]
        ax2.plot(lims, lims, "k--", lw=0.8)
        ax2.set_xlabel("observed")
        ax2.set_ylabel("fitted")
        ax2.set_title(f"rms log error {result.attrs['rmse_log']:.2e}")
        return fig
