"""The ``fourier-regression`` task: fit a sum of sinusoids, the spectral-bias benchmark."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from overtone import ConfigError

from overtone_torch.tasks.base import TensorTask, check_positive

SAMPLING = ("random", "grid")
#: Largest evaluation grid (points in all): keeps n-D grids in memory.
MAX_EVAL_POINTS = 1 << 20


def regular_grid(points: int, dim: int, low: float, high: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``points`` per axis ``low + j (high - low) / points`` (``j = 0 .. points - 1``, ``high`` left out).

    Returns the axis ``(points,)`` and every grid point ``(points**dim, dim)`` in C order (the
    last axis varies fastest). Leaving ``high`` out makes the grid one period of an integer
    frequency, so a DFT of values on it has the target's frequencies on its bins.
    """
    axis = low + (high - low) * torch.arange(points, dtype=torch.float64) / points
    mesh = torch.meshgrid(*([axis] * dim), indexing="ij")
    return axis, torch.stack([m.reshape(-1) for m in mesh], dim=1)


class FourierRegression(TensorTask):
    """Targets ``y(x) = sum_i A_i sin(2 pi k_i . x + phi_i)`` on ``x in [low, high)^dim``.

    The spectral-bias setting of the F-principle (Xu et al., arXiv 1901.06523) and of KAN vs
    MLP (arXiv 2410.01803: 1-D, ``k = 5, 10, ..., 50``). Frequencies ``k_i`` are in cycles per
    unit of ``x``: numbers for ``dim = 1``, vectors of length ``dim`` otherwise. Amplitudes
    default to 1 and phases to 0. Training inputs are ``n_train`` points drawn uniformly under
    ``seed`` (``sampling = "random"``) or a regular grid of ``n_train`` points per axis offset by
    half a spacing from the evaluation grid (``"grid"``); Gaussian noise of std ``noise`` is added
    to the training targets only. The evaluation set is the regular grid of ``eval_points`` per
    axis (``[low, high)``, endpoint left out), whose DFT puts frequency ``k`` on bin
    ``k (high - low)`` when that is an integer. Targets are float ``(B,)``; there are no classes
    (``n_classes = None``, ``n_outputs = 1``, ``target = "regression"``).
    """

    target = "regression"
    n_outputs = 1

    def __init__(self, *, seed: int, dim: int = 1,
                 frequencies: Sequence[Any] = (5, 10, 15, 20, 25, 30, 35, 40, 45, 50),
                 amplitudes: Sequence[float] = (), phases: Sequence[float] = (),
                 domain: Sequence[float] = (-1.0, 1.0), sampling: str = "random", n_train: int = 1000,
                 eval_points: int = 512, noise: float = 0.0) -> None:
        check_positive("dim", dim)
        check_positive("n_train", n_train)
        check_positive("eval_points", eval_points, 2)
        if sampling not in SAMPLING:
            raise ConfigError(f"[task] sampling = {sampling!r}; allowed: {', '.join(SAMPLING)}")
        if len(domain) != 2 or not float(domain[1]) > float(domain[0]):
            raise ConfigError(f"[task] domain = {list(domain)} must be [low, high] with low < high")
        if noise < 0:
            raise ConfigError(f"[task] noise = {noise} must be >= 0")
        if eval_points**dim > MAX_EVAL_POINTS:
            raise ConfigError(f"[task] eval_points**dim = {eval_points}**{dim} exceeds {MAX_EVAL_POINTS} points; "
                              f"lower eval_points")
        self.low, self.high = float(domain[0]), float(domain[1])
        self.frequencies = self._frequencies(frequencies, dim)
        n = len(self.frequencies)
        self.amplitudes = self._per_component("amplitudes", amplitudes, n, 1.0)
        self.phases = self._per_component("phases", phases, n, 0.0)
        self.dim, self.sampling, self.noise = dim, sampling, noise
        generator = torch.Generator().manual_seed(seed)
        if sampling == "random":
            x_train = self.low + (self.high - self.low) * torch.rand(n_train, dim, generator=generator,
                                                                     dtype=torch.float64)
        else:
            if n_train**dim > MAX_EVAL_POINTS:
                raise ConfigError(f"[task] a training grid of n_train**dim = {n_train}**{dim} points is too "
                                  f"large; lower n_train")
            _, x_train = regular_grid(n_train, dim, self.low, self.high)
            x_train = x_train + 0.5 * (self.high - self.low) / n_train
        y_train = self.target_function(x_train)
        if noise:
            y_train = y_train + noise * torch.randn(y_train.shape, generator=generator, dtype=torch.float64)
        self.axis, x_eval = regular_grid(eval_points, dim, self.low, self.high)
        super().__init__(x_train.float(), y_train.float(), x_eval.float(), self.target_function(x_eval).float())
        self.input_spec = {"kind": "vector", "dim": dim, "output": "pooled"}
        self.n_classes = None

    @staticmethod
    def _frequencies(frequencies: Sequence[Any], dim: int) -> torch.Tensor:
        """Frequency vectors ``(n, dim)`` from numbers (``dim = 1``) or vectors of length ``dim``."""
        if len(frequencies) == 0:
            raise ConfigError("[task] frequencies is empty; give at least one, e.g. frequencies = [5, 10]")
        rows = []
        for k in frequencies:
            row = [k] if isinstance(k, (int, float)) and not isinstance(k, bool) else k
            if (not isinstance(row, (list, tuple)) or len(row) != dim
                    or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in row)):
                example = "[5, 10]" if dim == 1 else f"[{[1] * dim}, {[2] * dim}]"
                raise ConfigError(f"[task] frequency {k!r} must be {'a number' if dim == 1 else f'a list of {dim} numbers'} "
                                  f"for dim = {dim}; e.g. frequencies = {example}")
            rows.append([float(v) for v in row])
        return torch.tensor(rows, dtype=torch.float64)

    @staticmethod
    def _per_component(name: str, values: Sequence[float], n: int, default: float) -> torch.Tensor:
        if len(values) == 0:
            return torch.full((n,), default, dtype=torch.float64)
        if len(values) != n:
            raise ConfigError(f"[task] {name} has {len(values)} values for {n} frequencies; give one per "
                              f"frequency or none (default {default})")
        return torch.tensor([float(v) for v in values], dtype=torch.float64)

    def target_function(self, x: torch.Tensor) -> torch.Tensor:
        """``sum_i A_i sin(2 pi k_i . x + phi_i)`` of ``x (N, dim)`` in float64: ``(N,)``."""
        angles = 2 * math.pi * x.double() @ self.frequencies.T + self.phases
        return torch.sin(angles) @ self.amplitudes

    def input_grid(self) -> tuple[torch.Tensor, dict[str, list[float]]]:
        """The evaluation grid and its axes: ``{"x": [...]}`` (1-D) or ``{"x0": ..., "x1": ...}``."""
        names = ["x"] if self.dim == 1 else [f"x{i}" for i in range(self.dim)]
        return self.x["eval"], {name: self.axis.tolist() for name in names}

    def describe(self) -> dict[str, Any]:
        return {"dim": self.dim, "frequencies": str(self.frequencies.squeeze(-1).tolist() if self.dim == 1
                                                    else self.frequencies.tolist()),
                "amplitudes": str(self.amplitudes.tolist()), "phases": str(self.phases.tolist()),
                "domain": f"[{self.low}, {self.high})", "sampling": self.sampling,
                "train_examples": self.train_size, "noise": self.noise}
