"""Per-frequency relative error of a network's outputs over training (the F-principle measure).

Xu et al. ("Frequency Principle") and Zhou, Zhang and Xu (arXiv 2405.17479, "A frequency
perspective on grokking") follow |F[f_theta](k) - F[y](k)| / |F[y](k)| over training, where F
is the discrete Fourier transform of the network's outputs f_theta and the targets y over the
evaluation inputs. Where the inputs are not on a grid (or are vectors), F is a non-uniform DFT
along one direction of input space (arXiv 2405.17479: 1,000 frequencies in [0, 2 pi], along
the first principal direction for MNIST).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from overtone import ConfigError, DatasetError
from overtone.runschema import STEP, drop_unrecorded_steps, pick_variable

from overtone_dynamics._common import as_float, figure, finish, last_step

#: Most complex entries of the DFT matrix held at once (frequencies x samples).
_BLOCK = 4_000_000


def nudft(positions: np.ndarray, values: np.ndarray, frequencies: np.ndarray) -> np.ndarray:
    """Non-uniform DFT F[g](k) = (1/n) sum_j g_j exp(-i k t_j) for each k in ``frequencies``.

    ``positions`` t (n,), ``values`` g (..., n) (leading axes kept), result (..., n_freq)
    complex. On a uniform grid t_j = 2 pi j / n and integer k it equals ``np.fft.fft(g)[k] / n``.
    """
    t = np.asarray(positions, dtype=np.float64)
    g = np.asarray(values, dtype=np.float64)
    k = np.asarray(frequencies, dtype=np.float64)
    out = np.empty((*g.shape[:-1], k.size), dtype=np.complex128)
    rows = max(1, _BLOCK // max(t.size, 1))
    for start in range(0, k.size, rows):
        block = np.exp(-1j * np.outer(k[start:start + rows], t))  # (block, n)
        out[..., start:start + rows] = g @ block.T / t.size
    return out


def principal_direction(inputs: np.ndarray) -> np.ndarray:
    """Unit first principal direction of ``inputs`` (n, d), its largest component made positive."""
    centred = inputs - inputs.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    direction = vt[0]
    return direction * np.sign(direction[np.argmax(np.abs(direction))])


class FrequencyError:
    """Relative error per frequency, |F[f](k) - F[y](k)| / |F[y](k)|, at each recorded step.

    Reads the network's outputs ``variable`` (step, sample) or (step, sample, output) on the
    evaluation inputs, the targets ``target_variable`` (sample[, output]) and the inputs
    ``input_variable`` (sample) or (sample, input_dim), a variable or a coordinate. Scalar inputs
    are the positions t_j; vector inputs are projected, t_j = x_j . d, on ``direction`` (a
    list of d numbers, normalised) or, with ``direction = "pca"``, on the first principal
    direction of the inputs. F is the non-uniform DFT (1/n) sum_j g_j exp(-i k t_j) at the
    ``frequencies`` given, else at ``n_frequencies`` evenly spaced angular frequencies in
    [0, ``k_max``] (radians per input unit). With several outputs, |.| is the Euclidean norm
    over them. ``relative_error`` is NaN where |F[y](k)| is below ``floor`` times its
    largest value (no target content to compare with); ``abs_error`` is defined everywhere.
    """

    name = "frequency-error"

    def __init__(self, variable: str | None = None, target_variable: str = "targets",
                 input_variable: str = "inputs", direction: str | list[float] = "pca",
                 frequencies: list[float] | None = None, n_frequencies: int = 1000,
                 k_max: float = 6.283185307179586, floor: float = 1e-3) -> None:
        if n_frequencies < 1:
            raise ConfigError(f"{self.name}: n_frequencies = {n_frequencies}; it must be at least 1")
        if not k_max > 0:
            raise ConfigError(f"{self.name}: k_max = {k_max}; it must be positive")
        if not 0 <= floor < 1:
            raise ConfigError(f"{self.name}: floor = {floor}; it must be in [0, 1)")
        if isinstance(direction, str) and direction != "pca":
            raise ConfigError(f"{self.name}: direction = {direction!r}; use 'pca' or a list of numbers")
        if frequencies is not None and len(frequencies) == 0:
            raise ConfigError(f"{self.name}: frequencies = []; give at least one or leave it unset")
        self.variable, self.target_variable, self.input_variable = variable, target_variable, input_variable
        self.direction = direction if isinstance(direction, str) else [float(v) for v in direction]
        self.frequencies = None if frequencies is None else [float(k) for k in frequencies]
        self.n_frequencies, self.k_max, self.floor = n_frequencies, float(k_max), float(floor)

    def _get(self, ds: xr.Dataset, name: str, what: str) -> xr.DataArray:
        if not isinstance(ds, xr.Dataset) or name not in ds.variables:
            have = ", ".join(map(str, getattr(ds, "variables", {}))) or "(none)"
            raise DatasetError(f"{self.name}: no {what} variable {name!r} in the dataset (it has: {have}); "
                               f"set {what}_variable= to it")
        return ds[name]

    def _positions(self, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        if inputs.ndim == 1:
            return inputs, None
        if self.direction == "pca":
            direction = principal_direction(inputs)
        else:
            direction = np.asarray(self.direction, dtype=np.float64)
            if direction.size != inputs.shape[1] or not np.linalg.norm(direction) > 0:
                raise ConfigError(f"{self.name}: direction has {direction.size} numbers; the inputs have "
                                  f"{inputs.shape[1]} dims (and it must not be zero)")
            direction = direction / np.linalg.norm(direction)
        return inputs @ direction, direction

    def __call__(self, ds: xr.Dataset) -> xr.Dataset:
        da = pick_variable(ds, self.variable, ["predictions", "outputs", "prediction"], self.name)
        da = drop_unrecorded_steps(da, self.name)
        if STEP not in da.dims:
            da = da.expand_dims({STEP: [0]})
        if da.dims[0] != STEP or da.ndim not in (2, 3):
            raise DatasetError(f"{self.name}: {da.name!r} has dims {da.dims}; expected (step, sample) "
                               "or (step, sample, output)")
        sample = da.dims[1]
        targets = self._get(ds, self.target_variable, "target")
        inputs = self._get(ds, self.input_variable, "input")
        y = as_float(targets, self.name)
        x = as_float(inputs, self.name)
        n = da.sizes[sample]
        if y.shape != da.shape[1:] and not (da.ndim == 2 and y.shape == (n, 1)):
            raise DatasetError(f"{self.name}: {targets.name!r} has shape {y.shape}; expected {da.shape[1:]} "
                               f"like one step of {da.name!r}")
        if x.ndim not in (1, 2) or x.shape[0] != n:
            raise DatasetError(f"{self.name}: {inputs.name!r} has shape {x.shape}; expected ({n},) or "
                               f"({n}, input_dim), one row per {sample!r}")
        positions, direction = self._positions(x)
        k = (np.asarray(self.frequencies) if self.frequencies is not None
             else np.linspace(0.0, self.k_max, self.n_frequencies))
        f = as_float(da, self.name)  # (step, n[, out])
        f = f.reshape(f.shape[0], n, -1)
        y = y.reshape(n, -1)
        # (out, n) -> (out, freq); outputs over steps: (step, out, n) -> (step, out, freq)
        ft_y = nudft(positions, y.T, k)
        ft_f = nudft(positions, np.swapaxes(f, 1, 2), k)
        target_amp = np.sqrt(np.sum(np.abs(ft_y) ** 2, axis=0))
        output_amp = np.sqrt(np.sum(np.abs(ft_f) ** 2, axis=1))
        abs_error = np.sqrt(np.sum(np.abs(ft_f - ft_y[None]) ** 2, axis=1))
        valid = target_amp > self.floor * target_amp.max() if target_amp.max() > 0 else np.zeros_like(k, bool)
        relative = np.where(valid, abs_error / np.where(valid, target_amp, 1.0), np.nan)
        result = xr.Dataset({
            "relative_error": ((STEP, "frequency"), relative, {
                "long_name": "relative error per frequency", "units": "1",
                "description": "|F[f](k) - F[y](k)| / |F[y](k)|; NaN where |F[y](k)| < floor * max |F[y]|"}),
            "abs_error": ((STEP, "frequency"), abs_error, {
                "long_name": "error amplitude per frequency", "units": "output units",
                "description": "|F[f](k) - F[y](k)|, F the DFT (1/n) sum_j g_j exp(-i k t_j)"}),
            "output_amplitude": ((STEP, "frequency"), output_amp, {
                "long_name": "amplitude of the outputs' DFT", "units": "output units"}),
            "target_amplitude": ("frequency", target_amp, {
                "long_name": "amplitude of the targets' DFT", "units": "output units"}),
            "position": ("sample_index", positions, {
                "long_name": "input position t_j the DFT uses", "units": "input units"}),
        }, coords={STEP: da[STEP].values, "frequency": ("frequency", k, {
            "long_name": "angular frequency k", "units": "radians per input unit"})})
        if direction is not None:
            result["direction"] = ("input_dim", direction, {"long_name": "projection direction", "units": "1"})
        result.attrs["floor"] = self.floor
        return finish(result, self.name, vars(self), str(da.name))

    def plot(self, result: xr.Dataset):
        """Heat map of the relative error (frequency x step), and the spectra at the last step."""
        fig, (ax1, ax2) = figure(2)
        rel = result["relative_error"]
        steps = result[STEP].values
        k = result["frequency"].values
        if rel.sizes[STEP] > 1 and k.size > 1:
            image = np.log10(np.clip(rel.values.T, 1e-6, None))
            mesh = ax1.pcolormesh(steps, k, image, shading="nearest", cmap="viridis")
            fig.colorbar(mesh, ax=ax1, label="log10 relative error")
            ax1.set_xlabel("step")
            ax1.set_ylabel("frequency k [rad per input unit]")
        else:
            ax1.semilogy(k, last_step(result)["relative_error"].values, marker=".")
            ax1.set_xlabel("frequency k [rad per input unit]")
            ax1.set_ylabel("relative error")
        ax1.set_title("relative error per frequency")
        last = last_step(result)
        ax2.plot(k, last["target_amplitude"].values, label="target")
        ax2.plot(k, last["output_amplitude"].values, label="output (last step)")
        ax2.set_xlabel("frequency k [rad per input unit]")
        ax2.set_ylabel("|DFT|")
        ax2.legend(fontsize=8)
        return fig
