"""Fourier views of modular-arithmetic networks.

* ``embedding-fourier``: Fourier power of an embedding matrix over the token index
  (Nanda et al. 2023, "Progress measures for grokking via mechanistic interpretability").
* ``grid-error-spectrum`` (formerly ``grokking-frequency``, still accepted with a warning):
  overtone's own construction, the error of the network's outputs over the (a, b) input grid
  decomposed by 2-D DFT over the token ids and binned radially. It is not the measure of
  arXiv 2405.17479 (a non-uniform DFT along an input direction: ``frequency-error``).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import xarray as xr
from overtone import ConfigError, DatasetError
from overtone.runschema import STEP, drop_unrecorded_steps, pick_variable

from overtone_dynamics._common import (
    as_float,
    check_dims,
    figure,
    finish,
    last_step,
    per_step,
    plot_over_steps,
)


def fourier_power(embedding: np.ndarray) -> np.ndarray:
    """Power of ``embedding`` (p, d) per frequency k = 0..p//2 of the token index.

    With F = DFT over tokens, P_k = (|F_k|^2 + |F_{p-k}|^2) / p summed over the d columns
    (k and p - k are one real frequency: the cos and sin of 2 pi k n / p). With this
    normalisation sum_k P_k = sum_{n, j} W[n, j]^2 (Parseval).
    """
    p = embedding.shape[0]
    spectrum = np.abs(np.fft.fft(embedding, axis=0)) ** 2 / p
    per_bin = spectrum.sum(axis=1)
    n_freq = p // 2 + 1
    power = per_bin[:n_freq].copy()
    mirror = np.arange(1, n_freq)
    mirror = mirror[p - mirror != mirror]  # the Nyquist bin of even p has no partner
    power[mirror] += per_bin[p - mirror]
    return power


class EmbeddingFourier:
    """Fourier power of an embedding matrix over the token index, and its key frequencies.

    For W (p, d) (token n = 0..p-1 is the number n) the power at frequency k is
    P_k = sum_j |sum_n W[n, j] exp(-2 pi i k n / p)|^2 / p, combining k and p - k. The key
    frequencies are the ``n_keys`` frequencies of largest power (k = 0, the mean embedding,
    excluded when ``exclude_dc``), and ``key_fraction`` is the share of the (non-DC) power
    they hold. A grokked modular-addition network concentrates its embedding power in a few
    key frequencies (Nanda et al. 2023), how much of it depends on the run: the grokking MLP
    of ``examples/grokking-mlp.toml`` (the demo's settings) ends its 1,000 steps with 0.545,
    0.623 and 0.672 (seeds 0, 1, 2) of its non-DC power in its top 5 of 48 frequencies, not
    nearly all of it (docs/dynamics.md).
    """

    name = "embedding-fourier"

    def __init__(self, variable: str | None = None, p: int | None = None, n_keys: int = 5,
                 exclude_dc: bool = True) -> None:
        if n_keys < 1:
            raise ConfigError(f"{self.name}: n_keys = {n_keys}; it must be at least 1")
        if p is not None and p < 3:
            raise ConfigError(f"{self.name}: p = {p}; it must be at least 3")
        self.variable, self.p, self.n_keys, self.exclude_dc = variable, p, n_keys, exclude_dc

    def __call__(self, ds: xr.Dataset) -> xr.Dataset:
        da = pick_variable(ds, self.variable, ["embeddings", "embedding"], self.name)
        check_dims(da, 2, self.name, "(token, dim)")
        da = drop_unrecorded_steps(da, self.name)
        token_dim = [d for d in da.dims if d != STEP][0]
        p = self.p if self.p is not None else int(getattr(ds, "attrs", {}).get("p", da.sizes[token_dim]))
        if p > da.sizes[token_dim]:
            raise DatasetError(f"{self.name}: p = {p} but {da.name!r} has only "
                               f"{da.sizes[token_dim]} tokens along {token_dim!r}; set p= to the modulus")
        da = da.isel({token_dim: slice(0, p)})
        values = as_float(da, self.name)
        n_freq = p // 2 + 1
        first = 1 if self.exclude_dc else 0
        n_keys = min(self.n_keys, n_freq - first)

        def kernel(w: np.ndarray) -> xr.Dataset:
            power = fourier_power(w)
            total = power[first:].sum()
            if not total > 0:
                raise DatasetError(
                    f"{self.name}: {da.name!r} is constant over tokens (no power outside k = 0); "
                    "the power fractions are undefined")
            fraction = power / total
            if self.exclude_dc:
                fraction[0] = 0.0
            order = np.argsort(-fraction[first:], kind="stable")[:n_keys] + first
            return xr.Dataset({
                "power": ("frequency", power),
                "fraction": ("frequency", fraction),
                "key_frequency": ("rank", order.astype(np.int64)),
                "key_fraction": ((), float(fraction[order].sum())),
            })

        values_da = da.copy(data=values)
        result = per_step(values_da, kernel)
        result = result.assign_coords(frequency=np.arange(n_freq), rank=np.arange(1, n_keys + 1))
        result["power"].attrs.update(long_name="Fourier power over tokens",
                                     units="squared embedding units",
                                     description="sum over dims of |DFT_k|^2/p, k and p-k combined")
        result["fraction"].attrs.update(long_name="share of power", units="1",
                                        description="P_k / sum of P (k = 0 excluded when exclude_dc)")
        result["key_frequency"].attrs.update(long_name="key frequency", units="cycles per p tokens")
        result["key_fraction"].attrs.update(long_name="power in key frequencies", units="1")
        result["frequency"].attrs.update(units="cycles per p tokens")
        result.attrs["p"] = p
        return finish(result, self.name, vars(self), str(da.name))

    def plot(self, result: xr.Dataset):
        """Power share per frequency at the last step, and the key frequencies' share over steps."""
        fig, (ax1, ax2) = figure(2)
        last = last_step(result)
        ax1.bar(last["frequency"].values, last["fraction"].values, width=0.8)
        for k in np.atleast_1d(last["key_frequency"].values):
            ax1.annotate(str(int(k)), (k, float(last["fraction"].sel(frequency=k))),
                         ha="center", va="bottom", fontsize=8)
        ax1.set_xlabel("frequency k (cycles per p tokens)")
        ax1.set_ylabel("share of embedding power")
        ax1.set_title("embedding Fourier spectrum" + (" (last step)" if STEP in result.dims else ""))
        plot_over_steps(ax2, result, "key_fraction")
        ax2.set_ylim(0, 1.05)
        ax2.set_title(f"power in the top {result.sizes['rank']} frequencies")
        return fig


# -- grid-error-spectrum (formerly grokking-frequency) ----------------------------------------

_OPS = {
    "+": lambda a, b, p: (a + b) % p,
    "-": lambda a, b, p: (a - b) % p,
    "*": lambda a, b, p: (a * b) % p,
}


def modular_targets(p: int, op: str) -> np.ndarray:
    """The correct class c(a, b) = a op b mod p over the p x p grid."""
    if op == "/":
        a, b = np.meshgrid(np.arange(p), np.arange(p), indexing="ij")
        inverse = np.array([pow(int(x), -1, p) if x else 0 for x in range(p)])
        return (a * inverse[b]) % p
    if op not in _OPS:
        raise ConfigError(f"grid-error-spectrum: op = {op!r}; allowed: '+', '-', '*', '/'")
    a, b = np.meshgrid(np.arange(p), np.arange(p), indexing="ij")
    return _OPS[op](a, b, p)


def radial_bins(na: int, nb: int) -> np.ndarray:
    """Integer radial frequency round(sqrt(ka'^2 + kb'^2)), with k' = min(k, n - k)."""
    ka = np.minimum(np.arange(na), na - np.arange(na))
    kb = np.minimum(np.arange(nb), nb - np.arange(nb))
    return np.rint(np.hypot(ka[:, None], kb[None, :])).astype(np.int64)


def error_spectrum(error: np.ndarray) -> np.ndarray:
    """Power of an error field e(a, b, ...) per 2-D frequency (ka, kb), summed over trailing axes.

    E(ka, kb) = sum_c |DFT2(e[..., c])(ka, kb)|^2 / (n_a n_b), so that
    sum_{ka, kb} E = sum_{a, b, c} e^2 (Parseval).
    """
    na, nb = error.shape[:2]
    spectrum = np.abs(np.fft.fft2(error, axes=(0, 1))) ** 2 / (na * nb)
    return spectrum.reshape(na, nb, -1).sum(axis=2)


class GridErrorSpectrum:
    """Error of a modular-arithmetic network over its input grid, per 2-D DFT frequency of the
    token ids (overtone's own construction).

    From outputs q(a, b, c) over the full grid (probabilities, or scores turned into
    probabilities by a softmax over classes) and the correct classes y(a, b), the error field is
    e(a, b, c) = q(a, b, c) - onehot(y(a, b))_c (``error="probability"``) or the per-point
    cross-entropy e(a, b) = -log q(a, b, y) (``error="loss"``); for ``op="/"`` the column
    b = 0 (undefined) is set to zero error. Its 2-D DFT over (a, b) gives the error power per
    frequency (ka, kb), normalised so that it sums to sum e^2 (Parseval), and a radial
    spectrum over k = round(|(ka', kb')|) with k' = min(k, p - k).

    This is not the measure of arXiv 2405.17479 (Zhou, Zhang, Xu: a non-uniform DFT of the
    outputs along an input direction, ``frequency-error``). Frequency over token ids has no
    privileged meaning (relabelling the tokens permutes it), and the radial bins mix the
    diagonal ka = kb on which the error of a + b lies with every other direction; the project's
    own run (``examples/grokking-mlp.toml``) does not show low radial frequencies fitted first.
    """

    name = "grid-error-spectrum"

    def __init__(self, variable: str | None = None, op: str | None = None,
                 output: str = "auto", error: str = "probability",
                 target_variable: str = "targets") -> None:
        if output not in ("auto", "probabilities", "scores"):
            raise ConfigError(f"{self.name}: output = {output!r}; allowed: 'auto', "
                              "'probabilities', 'scores'")
        if error not in ("probability", "loss"):
            raise ConfigError(f"{self.name}: error = {error!r}; allowed: 'probability', 'loss'")
        if op is not None and op not in ("+", "-", "*", "/"):
            raise ConfigError(f"{self.name}: op = {op!r}; allowed: '+', '-', '*', '/'")
        self.variable, self.op, self.output = variable, op, output
        self.error, self.target_variable = error, target_variable

    def _kind(self, da: xr.DataArray, ds: Any) -> str:
        if self.output != "auto":
            return self.output
        for source in (da.attrs, getattr(ds, "attrs", {})):
            for key in ("output", "outputs", "kind", "output_kind"):
                text = str(source.get(key, "")).lower()
                if text.startswith("prob"):
                    return "probabilities"
                if text.startswith(("score", "logit")):
                    return "scores"
        raise DatasetError(
            f"{self.name}: cannot tell whether {da.name!r} holds probabilities or scores (no "
            "'output' attribute); set output='probabilities' or output='scores'")

    def _op(self, ds: Any) -> str | None:
        return self.op or str(getattr(ds, "attrs", {}).get("op", "")) or None

    def _targets(self, ds: Any, p: int, nb: int) -> np.ndarray:
        if isinstance(ds, xr.Dataset) and self.target_variable in ds.variables:
            targets = np.asarray(ds[self.target_variable].values)
            if targets.shape != (p, nb):
                raise DatasetError(f"{self.name}: {self.target_variable!r} has shape "
                                   f"{targets.shape}; expected ({p}, {nb}) like the (a, b) grid")
            return targets.astype(np.int64)
        op = self._op(ds)
        if op is None:
            raise DatasetError(
                f"{self.name}: no {self.target_variable!r} variable and no 'op' attribute; "
                "set op= ('+', '-', '*', '/') or target_variable= to the correct classes")
        if nb != p:
            raise DatasetError(f"{self.name}: the grid is {p} x {nb}; op= needs a square p x p grid")
        return modular_targets(p, op)

    def __call__(self, ds: xr.Dataset) -> xr.Dataset:
        da = pick_variable(ds, self.variable, ["outputs", "output"], self.name)
        check_dims(da, 3, self.name, "(a, b, class)")
        da = drop_unrecorded_steps(da, self.name)
        a_dim, b_dim, c_dim = [d for d in da.dims if d != STEP]
        na, nb, nc = da.sizes[a_dim], da.sizes[b_dim], da.sizes[c_dim]
        if na < 2 or nb < 2:
            raise DatasetError(f"{self.name}: the (a, b) grid is {na} x {nb}; it needs at least 2 x 2")
        kind = self._kind(da, ds)
        targets = self._targets(ds, na, nb)
        if targets.min() < 0 or targets.max() >= nc:
            raise DatasetError(f"{self.name}: correct classes range {targets.min()}..{targets.max()} "
                               f"but {da.name!r} has {nc} classes")
        onehot = np.eye(nc)[targets]
        # a / 0 is undefined: with op = "/" the column b = 0 carries no error
        valid = np.ones((na, nb))
        if self._op(ds) == "/" and not (isinstance(ds, xr.Dataset) and self.target_variable in ds.variables):
            valid[:, 0] = 0.0
        values = as_float(da, self.name)
        radius = radial_bins(na, nb)
        n_radius = int(radius.max()) + 1
        error_kind = self.error

        def kernel(out: np.ndarray) -> xr.Dataset:
            if kind == "scores":
                shifted = out - out.max(axis=-1, keepdims=True)
                q = np.exp(shifted)
                q /= q.sum(axis=-1, keepdims=True)
            else:
                q = out
            if error_kind == "probability":
                err = (q - onehot) * valid[..., None]
            else:
                picked = np.take_along_axis(q, targets[..., None], axis=-1)[..., 0]
                err = -np.log(np.clip(picked, 1e-300, None)) * valid
            power = error_spectrum(err)
            radial = np.bincount(radius.ravel(), weights=power.ravel(), minlength=n_radius)
            total = float(power.sum())
            return xr.Dataset({
                "power": (("ka", "kb"), power),
                "radial_power": ("radius", radial),
                "total_error": ((), total),
                "accuracy": ((), float(np.sum((q.argmax(axis=-1) == targets) * valid) / valid.sum())),
            })

        result = per_step(da.copy(data=values), kernel)
        result = result.assign_coords(ka=np.arange(na), kb=np.arange(nb), radius=np.arange(n_radius))
        unit = "squared probability" if self.error == "probability" else "nats^2"
        result["power"].attrs.update(long_name="error power", units=unit,
                                     description="|DFT2 of the error over (a, b)|^2 / (p_a p_b), summed over classes")
        result["radial_power"].attrs.update(long_name="error power per radial frequency", units=unit,
                                            description="power summed over round(|(ka', kb')|) = radius")
        result["total_error"].attrs.update(long_name="total squared error", units=unit,
                                           description="sum over the grid of e^2 (= sum of power)")
        result["accuracy"].attrs.update(long_name="accuracy over the full grid", units="1")
        result["ka"].attrs.update(units="cycles per p")
        result["kb"].attrs.update(units="cycles per p")
        result["radius"].attrs.update(units="cycles per p")
        result.attrs.update(output=kind, error=self.error)
        return finish(result, self.name, vars(self), str(da.name))

    def plot(self, result: xr.Dataset):
        """Radial error spectrum over steps (image) and the 2-D spectrum at the last step."""
        fig, (ax1, ax2) = figure(2)
        radial = result["radial_power"]
        if STEP in radial.dims and radial.sizes[STEP] > 1:
            steps = radial[STEP].values
            image = np.log10(np.maximum(radial.values.T, 1e-12))
            mesh = ax1.pcolormesh(steps, radial["radius"].values, image, shading="nearest")
            fig.colorbar(mesh, ax=ax1, label="log10 error power")
            ax1.set_xlabel("step")
            ax1.set_ylabel("radial frequency")
            ax1.set_title("error power per frequency over training")
        else:
            r = last_step(result)["radial_power"]
            ax1.semilogy(r["radius"].values, np.maximum(r.values, 1e-12), marker=".")
            ax1.set_xlabel("radial frequency")
            ax1.set_ylabel("error power")
            ax1.set_title("error power per radial frequency")
        power = last_step(result)["power"].values
        shifted = np.fft.fftshift(power)
        mesh = ax2.imshow(np.log10(np.maximum(shifted, 1e-12)), origin="lower", cmap="magma")
        fig.colorbar(mesh, ax=ax2, label="log10 error power")
        ax2.set_xlabel("kb (centred)")
        ax2.set_ylabel("ka (centred)")
        ax2.set_title("2-D error spectrum (last step)")
        return fig


class GrokkingFrequency(GridErrorSpectrum):
    """Deprecated name of :class:`GridErrorSpectrum` (``grid-error-spectrum``); warns once built."""

    name = "grokking-frequency"

    def __init__(self, variable: str | None = None, op: str | None = None,
                 output: str = "auto", error: str = "probability",
                 target_variable: str = "targets") -> None:
        warnings.warn("analyzer 'grokking-frequency' is renamed 'grid-error-spectrum' (it is overtone's "
                      "own grid DFT, not arXiv 2405.17479's measure: see 'frequency-error'); "
                      "use the new name", FutureWarning, stacklevel=2)
        super().__init__(variable, op, output, error, target_variable)
