"""Fokker-Planck dynamics of the density of a weight matrix's entries over training.

Bu, Kol and Liu (arXiv 2501.09659) evolve the probability density of the weights of individual
matrices (the bottleneck layers of a 2-bottleneck auto-encoder) with a Fokker-Planck equation
and compare the evolution with the empirical one. Here each matrix's entries are taken as
samples of one density ``p(w, t)`` on a fixed grid; drift ``D1(w)`` and diffusion ``D2(w)``
are estimated from the entries' step-to-step changes (Kramers-Moyal conditional moments);
``dp/dt = -d/dw (D1 p) + d^2/dw^2 (D2 p)`` is integrated from the density at an early step
(:mod:`overtone_dynamics.fokker_planck`: conservative finite volumes); and the prediction is
compared with the empirical density at every later probed step (Wasserstein-1, KL).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from overtone import ConfigError, DatasetError
from overtone.runschema import STEP, WEIGHT_PREFIX, drop_unrecorded_steps

from overtone_dynamics import fokker_planck as fp
from overtone_dynamics._common import as_float, finish

COEFFICIENTS = ("constant", "per-interval")


class WeightDensity:
    """Empirical weight density, Kramers-Moyal drift/diffusion and a Fokker-Planck prediction.

    For each weight probe in ``variables`` (default: every ``weight_*`` variable), with the
    steps where it was recorded ``t_0 < t_1 < ...``:

    - ``density (matrix, step, bin)``: histogram of all entries on ``bins`` equal cells over
      ``range`` (default: the entries' min to max over all steps, widened by ``pad`` of the
      span on each side);
    - ``drift``, ``diffusion (matrix, bin)``: ``D1(w) = E[w_{t_k+1} - w_{t_k} | w_{t_k} = w] /
      (t_k+1 - t_k)`` and ``D2(w) = Var[...] / (2 (t_k+1 - t_k))`` over every entry and every
      pair of consecutive recorded steps from ``start_step`` to ``fit_until`` (per optimizer
      step; :func:`~overtone_dynamics.fokker_planck.kramers_moyal`);
    - ``predicted (matrix, step, bin)``: the Fokker-Planck equation integrated from the
      empirical density at ``start_step`` (default: the first recorded step) with those
      coefficients (``coefficients = "constant"``), or with coefficients estimated afresh on
      each interval ``[t_k, t_k+1]`` (``"per-interval"``: tests the one-point Markov closure
      given each interval's moments; a bin with fewer than ``min_count`` transitions in the
      interval takes the pooled value); NaN before ``start_step``;
    - ``w1``, ``kl (matrix, step)``: W1(empirical, predicted) and KL(empirical || predicted);
      ``w1_static``: W1(empirical, the density at ``start_step``), the baseline of no dynamics;
    - ``mean_*``, ``std_*``: moments of the empirical and predicted densities.
    """

    name = "weight-density"

    def __init__(self, variables: list[str] | None = None, bins: int = 80, range: list[float] | None = None,
                 pad: float = 0.1, start_step: int | None = None, fit_until: int | None = None,
                 min_count: int = 20, coefficients: str = "constant") -> None:
        if isinstance(bins, bool) or not isinstance(bins, int) or bins < 4:
            raise ConfigError(f"{self.name}: bins = {bins!r}; it must be an integer >= 4")
        if range is not None and (len(range) != 2 or not float(range[1]) > float(range[0])):
            raise ConfigError(f"{self.name}: range = {range!r}; give [low, high] with low < high, or leave it unset")
        if not pad >= 0:
            raise ConfigError(f"{self.name}: pad = {pad}; it must be >= 0")
        if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 2:
            raise ConfigError(f"{self.name}: min_count = {min_count!r}; it must be an integer >= 2")
        if coefficients not in COEFFICIENTS:
            raise ConfigError(f"{self.name}: coefficients = {coefficients!r}; allowed: {', '.join(COEFFICIENTS)}")
        if variables is not None and len(variables) == 0:
            raise ConfigError(f"{self.name}: variables = []; name at least one weight probe or leave it unset")
        self.variables = None if variables is None else [str(v) for v in variables]
        self.bins, self.pad, self.min_count, self.coefficients = bins, float(pad), min_count, coefficients
        self.range = None if range is None else [float(range[0]), float(range[1])]
        self.start_step, self.fit_until = start_step, fit_until

    # -- input -------------------------------------------------------------------------

    def _selected(self, ds: xr.Dataset) -> list[xr.DataArray]:
        if not isinstance(ds, xr.Dataset):
            raise DatasetError(f"{self.name}: expected an xarray.Dataset of weight probes, got {type(ds).__name__}")
        names = self.variables or sorted(str(n) for n in ds.data_vars if str(n).startswith(WEIGHT_PREFIX))
        if not names:
            have = ", ".join(map(str, ds.data_vars)) or "(none)"
            raise DatasetError(f"{self.name}: no weight probe (weight_*) in the dataset (it has: {have}); record "
                               "[[probes]] kind = 'weights' or set variables=")
        arrays = []
        for name in names:
            if name not in ds.data_vars:
                have = ", ".join(map(str, ds.data_vars)) or "(none)"
                raise DatasetError(f"{self.name}: no variable {name!r} in the dataset (it has: {have})")
            da = ds[name]
            if STEP not in da.dims or da.dims[0] != STEP or da.ndim < 2:
                raise DatasetError(f"{self.name}: {name!r} has dims {da.dims}; expected (step, ...) with the "
                                   "weight's own dims after a leading 'step'")
            da = drop_unrecorded_steps(da, self.name)
            if da.sizes[STEP] < 3:
                raise DatasetError(f"{self.name}: {name!r} is recorded at {da.sizes[STEP]} step(s); drift and "
                                   "diffusion need at least 3 (probe more often)")
            if da.isel({STEP: 0}).size < 2:
                raise DatasetError(f"{self.name}: {name!r} has a single entry; a density needs many")
            arrays.append(da)
        return arrays

    def _edges(self, values: np.ndarray) -> np.ndarray:
        if self.range is not None:
            low, high = self.range
        else:
            low, high = float(values.min()), float(values.max())
            span = high - low if high > low else max(abs(high), 1.0)
            low, high = low - self.pad * span, high + self.pad * span
        return np.linspace(low, high, self.bins + 1)

    def _start_index(self, steps: np.ndarray, name: str) -> int:
        if self.start_step is None:
            return 0
        found = np.flatnonzero(steps == self.start_step)
        if not found.size:
            raise DatasetError(f"{self.name}: start_step = {self.start_step} is not a recorded step of {name!r} "
                               f"(recorded: {steps[0]} ... {steps[-1]}); use one of them")
        if found[0] >= len(steps) - 2:
            raise DatasetError(f"{self.name}: start_step = {self.start_step} leaves fewer than 2 later steps "
                               f"of {name!r}; start earlier")
        return int(found[0])

    def _fit_end(self, steps: np.ndarray, start: int) -> int:
        """Index of the last step whose transitions estimate the constant coefficients."""
        if self.fit_until is None:
            return len(steps) - 1
        end = int(np.searchsorted(steps, self.fit_until, side="right")) - 1
        if end < start + 1:
            raise DatasetError(f"{self.name}: fit_until = {self.fit_until} leaves no transition after the start "
                               f"step {steps[start]}; set it later")
        return end

    # -- analysis ----------------------------------------------------------------------

    def _one(self, da: xr.DataArray) -> dict[str, np.ndarray]:
        name = str(da.name)
        values = as_float(da, self.name).reshape(da.sizes[STEP], -1)  # (step, entry)
        steps = np.asarray(da[STEP].values if STEP in da.coords else np.arange(len(values)), dtype=np.float64)
        if np.any(np.diff(steps) <= 0):
            raise DatasetError(f"{self.name}: the steps of {name!r} do not increase; sort the dataset by step")
        edges = self._edges(values)
        h = float(edges[1] - edges[0])
        centres = 0.5 * (edges[:-1] + edges[1:])
        start = self._start_index(steps, name)
        end = self._fit_end(steps, start)
        density = np.stack([fp.histogram_density(v, edges) for v in values])
        dt = np.diff(steps)[start:end, None]
        try:
            drift, diffusion, counts = fp.kramers_moyal(values[start:end], values[start + 1:end + 1], dt, edges,
                                                        self.min_count)
        except fp.TooFewTransitions as exc:
            raise DatasetError(f"{self.name}: {name!r}: {exc}") from None
        predicted = np.full_like(density, np.nan)
        predicted[start] = density[start]
        constant = fp.fokker_planck_matrix(drift, diffusion, h)
        for k in range(start, len(steps) - 1):
            rates = constant
            if self.coefficients == "per-interval":  # this interval's moments; pooled where it has too few
                d1, d2, _ = fp.conditional_moments(values[k], values[k + 1], steps[k + 1] - steps[k], edges,
                                                   self.min_count)
                rates = fp.fokker_planck_matrix(np.where(np.isfinite(d1), d1, drift),
                                                np.where(np.isfinite(d2), d2, diffusion), h)
            predicted[k + 1] = fp.integrate(predicted[k], rates, steps[k + 1] - steps[k])
        w1 = np.full(len(steps), np.nan)
        kl, static = w1.copy(), w1.copy()
        for k in range(start, len(steps)):
            w1[k] = fp.wasserstein1(density[k], predicted[k], h)
            kl[k] = fp.kl_divergence(density[k], predicted[k], h)
            static[k] = fp.wasserstein1(density[k], density[start], h)
        return {"density": density, "predicted": predicted, "drift": drift, "diffusion": diffusion,
                "transitions": counts, "w1": w1, "kl": kl, "w1_static": static, "centres": centres,
                "h": h, "steps": steps, "start": steps[start], "fit_end": steps[end],
                "mean_empirical": density @ centres * h, "mean_predicted": predicted @ centres * h,
                "std_empirical": _std(density, centres, h), "std_predicted": _std(predicted, centres, h),
                "entries": values.shape[1]}

    def __call__(self, ds: xr.Dataset) -> xr.Dataset:
        arrays = self._selected(ds)
        parts = [self._one(da) for da in arrays]
        steps = parts[0]["steps"]
        for da, part in zip(arrays, parts):
            if part["steps"].shape != steps.shape or np.any(part["steps"] != steps):
                raise DatasetError(f"{self.name}: {da.name!r} is recorded at other steps than {arrays[0].name!r}; "
                                   "analyze them separately (variables=[...]) or probe them together")
        matrices = [str(da.name) for da in arrays]

        def stack(key):
            return np.stack([part[key] for part in parts])

        per_step = (("matrix", STEP), "1")
        result = xr.Dataset({
            "density": (("matrix", STEP, "bin"), stack("density"), {
                "long_name": "empirical density of the matrix's entries", "units": "1 / weight unit",
                "description": "histogram of all entries, cell averages; sum * bin_width = 1"}),
            "predicted": (("matrix", STEP, "bin"), stack("predicted"), {
                "long_name": "Fokker-Planck prediction of the density from start_step", "units": "1 / weight unit",
                "description": "dp/dt = -d/dw (D1 p) + d2/dw2 (D2 p), finite volumes (Scharfetter-Gummel fluxes, "
                               "no flux at the grid's ends), explicit Euler; NaN before start_step"}),
            "drift": (("matrix", "bin"), stack("drift"), {
                "long_name": "drift D1(w): E[dw | w] per optimizer step", "units": "weight unit / step",
                "description": "Kramers-Moyal first conditional moment over the fit steps' transitions"}),
            "diffusion": (("matrix", "bin"), stack("diffusion"), {
                "long_name": "diffusion D2(w): Var[dw | w] / 2 per optimizer step", "units": "weight unit^2 / step",
                "description": "Kramers-Moyal conditional variance / (2 dt) over the fit steps' transitions"}),
            "transitions": (("matrix", "bin"), stack("transitions"), {
                "long_name": "transitions starting in each bin (fit steps)", "units": "1",
                "description": f"bins with fewer than min_count = {self.min_count} take interpolated D1, D2"}),
            "w1": (per_step[0], stack("w1"), {
                "long_name": "Wasserstein-1 distance, empirical vs predicted density", "units": "weight unit"}),
            "kl": (per_step[0], stack("kl"), {
                "long_name": "KL(empirical || predicted) over the bins", "units": "nat"}),
            "w1_static": (per_step[0], stack("w1_static"), {
                "long_name": "Wasserstein-1 distance, empirical vs the start density (no dynamics)",
                "units": "weight unit"}),
            "mean_empirical": (per_step[0], stack("mean_empirical"), {
                "long_name": "mean of the empirical density", "units": "weight unit"}),
            "mean_predicted": (per_step[0], stack("mean_predicted"), {
                "long_name": "mean of the predicted density", "units": "weight unit"}),
            "std_empirical": (per_step[0], stack("std_empirical"), {
                "long_name": "standard deviation of the empirical density", "units": "weight unit"}),
            "std_predicted": (per_step[0], stack("std_predicted"), {
                "long_name": "standard deviation of the predicted density", "units": "weight unit"}),
            "start_step": ("matrix", stack("start"), {"long_name": "step the prediction starts from",
                                                      "units": "step"}),
            "fit_last_step": ("matrix", stack("fit_end"), {
                "long_name": "last step of the transitions that estimate D1, D2", "units": "step"}),
            "entries": ("matrix", stack("entries"), {"long_name": "entries of the matrix (samples per density)",
                                                     "units": "1"}),
            "bin_width": ("matrix", stack("h"), {"long_name": "width of the grid's bins", "units": "weight unit"}),
        }, coords={
            "matrix": ("matrix", matrices, {"long_name": "weight probe variable"}),
            STEP: (STEP, steps.astype(np.int64), {"long_name": "optimizer steps done", "units": "step"}),
            "bin": ("bin", np.arange(self.bins), {"long_name": "grid bin index", "units": "1"}),
            "w": (("matrix", "bin"), stack("centres"), {"long_name": "bin centre (weight value)",
                                                        "units": "weight unit"}),
        })
        result.attrs.update(coefficients=self.coefficients, scheme=(
            "finite volumes, Scharfetter-Gummel face fluxes, zero flux at the ends, explicit Euler substeps "
            "with I + dt A non-negative"), kl_floor=1e-10)
        return finish(result, self.name, vars(self), ", ".join(matrices))

    # -- plots -------------------------------------------------------------------------

    def plot(self, result: xr.Dataset):
        """Per matrix: the empirical density (step x w, heat map), the prediction against the
        empirical density at three steps, and W1 over steps (prediction and no-dynamics baseline;
        a dashed line where the transitions that estimate D1, D2 end, if before the last step)."""
        from matplotlib.figure import Figure

        n = result.sizes["matrix"]
        fig = Figure(figsize=(15, 3.6 * n), layout="constrained")
        axes = fig.subplots(n, 3, squeeze=False)
        steps = result[STEP].values
        for row, matrix in enumerate(result["matrix"].values):
            part = result.sel(matrix=matrix)
            w = part["w"].values
            heat, compare, distance = axes[row]
            mesh = heat.pcolormesh(steps, w, part["density"].values.T, shading="nearest", cmap="viridis")
            fig.colorbar(mesh, ax=heat, label="density")
            heat.set_xlabel("step")
            heat.set_ylabel("w")
            heat.set_title(f"{matrix}: empirical density", fontsize=9)
            valid = np.flatnonzero(np.isfinite(part["w1"].values))
            shown = valid[np.unique(np.linspace(0, len(valid) - 1, 3).round().astype(int))]
            for index, colour in zip(shown, ("C0", "C1", "C2")):
                compare.plot(w, part["density"].values[index], color=colour, label=f"empirical, step {steps[index]}")
                compare.plot(w, part["predicted"].values[index], color=colour, ls="--",
                             label=f"Fokker-Planck, step {steps[index]}")
            compare.set_xlabel("w")
            compare.set_ylabel("density")
            compare.legend(fontsize=7)
            compare.set_title("predicted (dashed) vs empirical", fontsize=9)
            distance.plot(steps, part["w1"].values, marker=".", label="Fokker-Planck")
            distance.plot(steps, part["w1_static"].values, marker=".", ls=":", label="no dynamics")
            if float(part["fit_last_step"]) < steps[-1]:
                distance.axvline(float(part["fit_last_step"]), color="grey", lw=0.8, ls="--", label="end of fit")
            distance.set_xlabel("step")
            distance.set_ylabel("W1 to the empirical density")
            distance.legend(fontsize=8)
        return fig


def _std(density: np.ndarray, centres: np.ndarray, h: float) -> np.ndarray:
    """Standard deviation of each row's cell-average density (mass at the cell centres)."""
    mean = density @ centres * h
    return np.sqrt(np.maximum(density @ centres**2 * h - mean**2, 0.0))
