"""Progress measures of modular addition (Nanda et al. 2023, "Progress measures for grokking via
mechanistic interpretability"): key frequencies, restricted and excluded loss, Gini of spectra.

A network that has grokked ``c = a + b mod p`` writes its logits as sums over a few key
frequencies f of cos(w_f (a + b - c)) (w_f = 2 pi f / p). As functions of the input pair those
are combinations of cos(w_f (a + b)) and sin(w_f (a + b)), for each class c. The restricted
loss keeps only those directions of the logits (plus each class's mean), the excluded loss
removes them; both are cross-entropies.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from overtone import ConfigError, DatasetError
from overtone.runschema import STEP, drop_unrecorded_steps, pick_variable

from overtone_dynamics._common import as_float, check_dims, figure, finish, plot_over_steps
from overtone_dynamics.fourier import fourier_power


def gini(values: np.ndarray) -> float:
    """Gini coefficient of non-negative ``values``: sum_ij |x_i - x_j| / (2 n sum_i x_i).

    0 when all entries are equal, (n - 1) / n when one entry holds everything. Computed from
    the sorted values: G = sum_i (2 i - n - 1) x_(i) / (n sum x), i = 1..n.
    """
    x = np.sort(np.asarray(values, dtype=np.float64).ravel())
    n, total = x.size, x.sum()
    if n == 0 or not total > 0:
        return float("nan")
    return float(np.sum((2 * np.arange(1, n + 1) - n - 1) * x) / (n * total))


def sum_components(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients of the logits L(a, b, c) (p, p, p) on cos(w_f (a + b)) and sin(w_f (a + b)).

    Returns (C, S), each (n_freq, p) for f = 1..(p - 1) // 2 (row f - 1) and class c: the
    least-squares coefficients C_f(c) = (2 / p^2) sum_{a, b} L(a, b, c) cos(w_f (a + b)) and
    S_f(c) likewise with sin (the directions are orthogonal over the p x p grid, each of
    squared norm p^2 / 2, for odd p).
    """
    p = logits.shape[0]
    a = np.arange(p)
    s = np.arange(p)
    # G[a, s, c] = L(a, s - a mod p, c): summing over a gives the total over pairs with a + b = s
    by_sum = logits[a[:, None], (s[None, :] - a[:, None]) % p].sum(axis=0)
    freqs = np.arange(1, (p - 1) // 2 + 1)
    phase = 2 * np.pi * np.outer(freqs, s) / p
    scale = 2.0 / p**2
    return scale * np.cos(phase) @ by_sum, scale * np.sin(phase) @ by_sum


def key_directions(cos_coef: np.ndarray, sin_coef: np.ndarray, keys: np.ndarray, p: int) -> np.ndarray:
    """The part of the logits in the directions of the frequencies ``keys``, over (a, b, c):
    sum_{f in keys} C_f(c) cos(w_f (a + b)) + S_f(c) sin(w_f (a + b))."""
    s = np.arange(p)
    part = np.zeros((p, p))  # (sum s, class)
    for f in keys:
        w = 2 * np.pi * f / p
        part += np.outer(np.cos(w * s), cos_coef[f - 1]) + np.outer(np.sin(w * s), sin_coef[f - 1])
    a = np.arange(p)
    return part[(a[:, None] + a[None, :]) % p]


def cross_entropy(logits: np.ndarray, targets: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean over pairs (where ``mask``) of logsumexp_c L(a, b, c) - L(a, b, y(a, b)), in nats."""
    top = logits.max(axis=-1, keepdims=True)
    lse = np.log(np.exp(logits - top).sum(axis=-1)) + top[..., 0]
    picked = np.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
    loss = lse - picked
    return float(loss[mask].mean() if mask is not None else loss.mean())


class ProgressMeasures:
    """Restricted loss, excluded loss and spectrum sparsity of a modular-addition network.

    From the logits L(a, b, c) over all p x p pairs (an outputs probe with
    ``output = "scores"``; log-probabilities give the same losses, since both are invariant to
    a per-pair shift of all classes), at each recorded step:

    * ``logit_fraction (frequency)``: the share of the class-centred logits' squared norm in
      the directions cos/sin(w_f (a + b)) (w_f = 2 pi f / p), f = 1..(p - 1)/2.
    * key frequencies: the ``n_keys`` frequencies of largest ``logit_fraction`` at
      ``key_step`` (``key_source = "logits"``), or of largest embedding Fourier power
      (``"embeddings"``, see ``embedding-fourier``), or given (``key_frequencies``); fixed over
      training, as in Nanda et al.
    * ``restricted_loss``: cross-entropy over all pairs of the logits projected onto the key
      directions, plus each class's mean logit over (a, b) (the mean difference the projection
      removes).
    * ``excluded_loss``: cross-entropy on the training pairs (``train_pair`` variable; all
      pairs without it) of the logits with the key directions removed.
    * ``train_loss``/``test_loss``: cross-entropy of the full logits on training/held-out pairs.
    * ``logit_gini`` and, with an ``embeddings`` probe, ``embedding_gini``: Gini coefficients
      of the logits' and the embeddings' Fourier spectra over f = 1..(p - 1)/2 (0: spread
      evenly, near 1: a few frequencies).
    """

    name = "progress-measures"

    def __init__(self, variable: str | None = None, output: str = "auto", n_keys: int = 5,
                 key_source: str = "logits", key_frequencies: list[int] | None = None,
                 key_step: int | None = None, embedding_variable: str = "embeddings",
                 train_variable: str = "train_pair", op: str | None = None) -> None:
        if n_keys < 1:
            raise ConfigError(f"{self.name}: n_keys = {n_keys}; it must be at least 1")
        if key_source not in ("logits", "embeddings"):
            raise ConfigError(f"{self.name}: key_source = {key_source!r}; allowed: 'logits', 'embeddings'")
        if output not in ("auto", "scores", "probabilities"):
            raise ConfigError(f"{self.name}: output = {output!r}; allowed: 'auto', 'scores', 'probabilities'")
        if op not in (None, "+"):
            raise ConfigError(f"{self.name}: op = {op!r}; the progress measures are defined for "
                              "modular addition only (op = '+')")
        self.variable, self.output, self.n_keys, self.key_source = variable, output, n_keys, key_source
        self.key_frequencies = None if key_frequencies is None else [int(f) for f in key_frequencies]
        self.key_step, self.embedding_variable, self.train_variable = key_step, embedding_variable, train_variable
        self.op = op

    def _logits(self, da: xr.DataArray) -> np.ndarray:
        kind = self.output if self.output != "auto" else str(da.attrs.get("output", "")).lower()
        values = as_float(da, self.name)
        if kind.startswith(("score", "logit")):
            return values
        if kind.startswith("prob"):
            # log-probabilities differ from the logits by a per-pair constant: same losses
            return np.log(np.clip(values, np.finfo(np.float32).tiny, None))
        raise DatasetError(f"{self.name}: cannot tell whether {da.name!r} holds scores or probabilities "
                           "(no 'output' attribute); set output='scores' or output='probabilities'")

    def _keys(self, ds: xr.Dataset, fractions: np.ndarray, steps: np.ndarray, p: int) -> np.ndarray:
        n_freq = (p - 1) // 2
        if self.key_frequencies is not None:
            keys = np.asarray(self.key_frequencies, dtype=np.int64)
            if keys.size == 0 or keys.min() < 1 or keys.max() > n_freq or len(set(keys)) != keys.size:
                raise ConfigError(f"{self.name}: key_frequencies = {self.key_frequencies}; they must be "
                                  f"distinct integers in 1..{n_freq}")
            return keys
        n_keys = min(self.n_keys, n_freq)
        if self.key_source == "logits":
            at = self._step_index(steps, "outputs")
            return np.argsort(-fractions[at], kind="stable")[:n_keys] + 1
        emb = self._embeddings(ds)
        if emb is None:
            raise DatasetError(f"{self.name}: key_source = 'embeddings' but the dataset has no "
                               f"{self.embedding_variable!r}; add an embeddings probe or use key_source='logits'")
        emb_steps = emb[STEP].values if STEP in emb.dims else np.array([0])
        at = self._step_index(emb_steps, self.embedding_variable)
        values = as_float(emb.isel({STEP: at}) if STEP in emb.dims else emb, self.name)[:p]
        power = fourier_power(values)[1:n_freq + 1]
        return np.argsort(-power, kind="stable")[:n_keys] + 1

    def _step_index(self, steps: np.ndarray, what: str) -> int:
        if self.key_step is None:
            return len(steps) - 1
        hits = np.flatnonzero(steps == self.key_step)
        if not hits.size:
            raise ConfigError(f"{self.name}: key_step = {self.key_step} is not a recorded step of {what!r} "
                              f"(it has {steps[0]}..{steps[-1]}); set key_step to one of its steps")
        return int(hits[0])

    def _embeddings(self, ds: xr.Dataset) -> xr.DataArray | None:
        if not isinstance(ds, xr.Dataset) or self.embedding_variable not in ds.data_vars:
            return None
        emb = ds[self.embedding_variable]
        check_dims(emb, 2, self.name, "(token, dim)")
        return drop_unrecorded_steps(emb, self.name)

    def __call__(self, ds: xr.Dataset) -> xr.Dataset:
        da = pick_variable(ds, self.variable, ["outputs", "scores", "logits"], self.name)
        check_dims(da, 3, self.name, "(a, b, class)")
        da = drop_unrecorded_steps(da, self.name)
        op = self.op or str(getattr(ds, "attrs", {}).get("op", "+"))
        if op != "+":
            raise DatasetError(f"{self.name}: the run's op is {op!r}; the progress measures are defined "
                               "for modular addition only (op = '+')")
        if STEP not in da.dims:
            da = da.expand_dims({STEP: [0]})
        _, na, nb, nc = da.shape
        p = na
        if not (na == nb == nc) or p < 3 or p % 2 == 0:
            raise DatasetError(f"{self.name}: {da.name!r} has an (a, b, class) shape ({na}, {nb}, {nc}); "
                               "expected (p, p, p) for an odd modulus p (outputs probe of modular addition)")
        mask = None
        if isinstance(ds, xr.Dataset) and self.train_variable in ds.variables:
            mask = np.asarray(ds[self.train_variable].values).astype(bool)
            if mask.shape != (p, p) or not mask.any() or mask.all():
                raise DatasetError(f"{self.name}: {self.train_variable!r} must be a ({p}, {p}) mask with "
                                   "both training and held-out pairs")
        a = np.arange(p)
        targets = (a[:, None] + a[None, :]) % p
        steps = da[STEP].values
        logits_all = self._logits(da)
        coefs, fractions = [], []
        for logits in logits_all:
            centred = logits - logits.mean(axis=-1, keepdims=True)
            centred = centred - centred.mean(axis=(0, 1), keepdims=True)
            cos_coef, sin_coef = sum_components(logits)
            coefs.append((cos_coef, sin_coef))
            c_cos, c_sin = sum_components(centred)
            norm = np.sum(centred**2)
            # ||component f||^2 = p * (p / 2) * sum_c (C^2 + S^2) over the p^3 entries
            power = p * p / 2 * (c_cos**2 + c_sin**2).sum(axis=1)
            fractions.append(power / norm if norm > 0 else np.zeros_like(power))
        fractions = np.asarray(fractions)
        keys = self._keys(ds, fractions, steps, p)
        rows: dict[str, list[float]] = {k: [] for k in ("restricted_loss", "excluded_loss", "train_loss",
                                                         "test_loss", "logit_gini")}
        for logits, (cos_coef, sin_coef), frac in zip(logits_all, coefs, fractions):
            part = key_directions(cos_coef, sin_coef, keys, p)
            restricted = part + logits.mean(axis=(0, 1), keepdims=True)
            rows["restricted_loss"].append(cross_entropy(restricted, targets))
            rows["excluded_loss"].append(cross_entropy(logits - part, targets, mask))
            rows["train_loss"].append(cross_entropy(logits, targets, mask))
            rows["test_loss"].append(cross_entropy(logits, targets, ~mask) if mask is not None else np.nan)
            rows["logit_gini"].append(gini(frac))
        n_freq = (p - 1) // 2
        result = xr.Dataset(
            {name: (STEP, np.asarray(values)) for name, values in rows.items()}
            | {"logit_fraction": ((STEP, "frequency"), fractions),
               "key_logit_fraction": (STEP, fractions[:, keys - 1].sum(axis=1)),
               "key_frequency": ("rank", keys.astype(np.int64))},
            coords={STEP: steps, "frequency": np.arange(1, n_freq + 1), "rank": np.arange(1, keys.size + 1)})
        emb = self._embeddings(ds)
        if emb is not None:
            emb_steps = emb[STEP].values if STEP in emb.dims else np.array([0])
            values = as_float(emb, self.name).reshape(len(emb_steps), *emb.shape[-2:])[:, :p]
            spectra = np.array([fourier_power(w)[1:n_freq + 1] for w in values])
            shares = spectra / spectra.sum(axis=1, keepdims=True)
            emb_result = xr.Dataset({"embedding_gini": (STEP, [gini(s) for s in spectra]),
                                     "key_embedding_fraction": (STEP, shares[:, keys - 1].sum(axis=1))},
                                    coords={STEP: emb_steps})
            result = xr.merge([result, emb_result], join="outer", combine_attrs="override")
        self._describe(result, mask is not None)
        result.attrs["p"] = p
        return finish(result, self.name, vars(self), str(da.name))

    @staticmethod
    def _describe(result: xr.Dataset, has_mask: bool) -> None:
        on_train = "training pairs" if has_mask else "all pairs (no train_pair mask)"
        attrs = {
            "restricted_loss": ("cross-entropy of the logits restricted to the key frequencies",
                                "all pairs; logits projected onto cos/sin(w_f (a+b)), f in keys, plus class means"),
            "excluded_loss": ("cross-entropy of the logits without the key frequencies",
                              f"{on_train}; the cos/sin(w_f (a+b)) components of the key f removed"),
            "train_loss": ("cross-entropy of the full logits on the training pairs", on_train),
            "test_loss": ("cross-entropy of the full logits on the held-out pairs",
                          "NaN without a train_pair mask"),
            "logit_gini": ("Gini coefficient of the logits' Fourier spectrum", "over f = 1..(p-1)/2"),
            "embedding_gini": ("Gini coefficient of the embeddings' Fourier spectrum", "over f = 1..(p-1)/2"),
            "key_embedding_fraction": ("share of embedding Fourier power in the key frequencies",
                                       "f = 0 excluded"),
            "logit_fraction": ("share of the class-centred logits' squared norm per frequency",
                               "directions cos/sin(w_f (a+b)) for each class"),
            "key_logit_fraction": ("share of the class-centred logits' squared norm in the key frequencies", ""),
            "key_frequency": ("key frequency", ""),
        }
        for name, (long_name, description) in attrs.items():
            if name in result:
                units = "nat" if name.endswith("loss") else ("cycles per p" if name == "key_frequency" else "1")
                result[name].attrs.update(long_name=long_name, units=units, description=description)
        result["frequency"].attrs.update(units="cycles per p")

    def plot(self, result: xr.Dataset):
        """Losses (restricted, excluded, train, test) and Gini coefficients over training."""
        fig, (ax1, ax2) = figure(2)
        for name in ("train_loss", "test_loss", "restricted_loss", "excluded_loss"):
            plot_over_steps(ax1, result, name, label=name.replace("_", " "))
        ax1.set_yscale("log")
        ax1.set_ylabel("cross-entropy [nat]")
        ax1.legend(fontsize=8)
        ax1.set_title(f"key frequencies {', '.join(map(str, result['key_frequency'].values))}")
        for name in ("logit_gini", "embedding_gini"):
            if name in result:
                plot_over_steps(ax2, result, name, label=name.replace("_", " "))
        ax2.set_ylim(0, 1.02)
        ax2.set_ylabel("Gini coefficient")
        ax2.legend(fontsize=8)
        return fig

