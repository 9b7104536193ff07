"""Helpers of the engine tests, and a tiny test plugin (load it with OVERTONE_PLUGINS=torch_engine_testing).

The analyzers here exist only to check the engine's wiring (due steps, analysis.nc groups,
report plots, failures); the real analyzers live in overtone-dynamics.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import xarray as xr
from overtone import Component, DatasetError, Param, hookimpl
from overtone.config import dump_toml

#: A run that takes about a second: (a + b) mod 23 with a small MLP.
SMALL = {
    "run": {"name": "small", "seed": 5},
    "task": {"name": "modular-arithmetic", "p": 23, "train_fraction": 0.5},
    "model": {"name": "mlp", "width": 32, "embed_dim": 16},
    "optimizer": {"name": "adamw", "lr": 0.01, "weight_decay": 0.1},
    "schedule": {"warmup_steps": 3, "decay": "cosine"},
    "train": {"steps": 30, "batch_size": 64, "eval_every": 5, "checkpoint_every": 10, "log_every": 4,
              "threads": 1},
    "probes": [{"kind": "embeddings", "every": 10}, {"kind": "hidden", "every": 15, "samples": 20},
               {"kind": "outputs", "every": 30},
               {"kind": "weights", "every": 30, "names": ["model.layers.0.weight", "loss.weight"]}],
}


def small(**sections) -> dict:
    """A deep copy of :data:`SMALL` with whole sections replaced (``train={...}`` merges into [train])."""
    config = copy.deepcopy(SMALL)
    for name, value in sections.items():
        if name == "train":
            config["train"].update(value)
        else:
            config[name] = value
    return config


def write(tmp_path: Path, config: dict, name: str = "exp.toml") -> Path:
    """Write ``config`` as TOML under ``tmp_path`` and return the path."""
    path = tmp_path / name
    path.write_text(dump_toml(config))
    return path


def registry_with_test_plugin():
    """The installed plugins plus this module (its test analyzers)."""
    from overtone.plugins import load_plugins
    from overtone.registry import Registry

    return Registry(load_plugins(modules=[__name__]))


class EmbeddingNorm:
    """Mean Euclidean norm of the embedding rows at each probe step (float64 NumPy)."""

    def __init__(self, variable: str = "embeddings", fail: bool = False) -> None:
        self.variable, self.fail = variable, fail

    def __call__(self, ds: xr.Dataset) -> xr.Dataset:
        if self.fail:
            raise DatasetError("test-norm: asked to fail")
        if self.variable not in ds:
            raise DatasetError(f"test-norm: no {self.variable!r}")
        values = np.asarray(ds[self.variable].values, dtype=np.float64)
        norms = np.linalg.norm(values, axis=-1).mean(axis=-1)
        return xr.Dataset({"mean_norm": (("step",), norms)}, coords={"step": ds.step.values},
                          attrs={"analyzer": "test-norm", "steps_seen": int(ds.sizes["step"])})

    def plot(self, result: xr.Dataset):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots()
        ax.plot(result.step, result.mean_norm)
        return fig


class PoisonedSGD:
    """Plain SGD that writes NaN into the first parameter on its ``nan_at``-th step (tests only)."""

    def __new__(cls, params, lr: float = 0.01, nan_at: int = 10):
        import torch

        class _Poisoned(torch.optim.SGD):
            steps = 0

            @torch.no_grad()
            def step(self, closure=None):
                result = super().step(closure)
                self.steps += 1
                if self.steps == nan_at:
                    self.param_groups[0]["params"][0].fill_(float("nan"))
                return result

        return _Poisoned(params, lr=lr)


def ItemInitModel(*, input_spec, d_out, **params):
    """Embeddings scaled by a number read from a tensor at init (impossible on the meta device)."""
    import torch

    class _Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.token_embedding = torch.nn.Embedding(input_spec["vocab_size"], 8)
            with torch.no_grad():
                self.token_embedding.weight /= self.token_embedding.weight.norm().item()
            self.linear = torch.nn.Linear(8 * input_spec["seq_len"], d_out)

        def forward(self, x):
            return self.linear(self.token_embedding(x).flatten(1))

    return _Model()


def LambdaModel(*, input_spec, d_out, **params):
    """A plugin author's mistake: a function, not a module."""
    return lambda x: x


def NoneModel(*, input_spec, d_out, **params):
    """A plugin author's mistake: the factory forgot its return."""


def _embed_linear(input_spec, d_features, width, transform=lambda t: t):
    """A module declaring ``d_features`` that embeds the tokens (width 4) and maps them linearly to
    ``width`` features, then applies ``transform``: the shape of each broken model below."""
    import torch

    class _Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.d_features = d_features
            self.token_embedding = torch.nn.Embedding(input_spec["vocab_size"], 4)
            self.linear = torch.nn.Linear(4 * input_spec["seq_len"], width)

        def forward(self, x):
            return transform(self.linear(self.token_embedding(x).flatten(1)))

    return _Model()


def WrongWidthModel(*, input_spec, d_out, **params):
    """Declares 16 features but produces 5 (the module built is a plain linear map)."""
    return _embed_linear(input_spec, 16, 5)


def ClassModel(*, input_spec, d_out, **params):
    """A plugin author's mistake: the factory returns the module's class, not an instance."""
    import torch

    return torch.nn.Linear


def DtypeModel(*, input_spec, d_out, dtype="int64", **params):
    """Features of the wrong dtype (``dtype``): integer, or float64 against a float32 head."""
    import torch

    return _embed_linear(input_spec, 8, 8, lambda t: t.to(getattr(torch, dtype)))


def NaNModel(*, input_spec, d_out, **params):
    """Features that are NaN from the start, before any optimizer update."""
    return _embed_linear(input_spec, 8, 8, lambda t: t * float("nan"))


def NoStepOptimizer(params, lr=0.01):
    """A plugin author's mistake: an Optimizer subclass that never defines step()."""
    import torch

    class _NoStep(torch.optim.Optimizer):
        def __init__(self):
            super().__init__(params, {"lr": lr})

    return _NoStep()


def KeywordParamsOptimizer(*, params, lr=0.01):
    """A plugin author's mistake: the parameters as a keyword, where the engine passes them first."""
    import torch

    return torch.optim.SGD(params, lr=lr)


def NoScoresLoss(*, d_in, n_classes):
    """A loss without ``scores``: the engine cannot evaluate accuracy with it."""
    import torch

    class _Loss(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(n_classes, d_in))

        def forward(self, features, targets):
            return torch.nn.functional.cross_entropy(features @ self.weight.T, targets)

    return _Loss()


def VectorLoss(*, d_in, n_classes):
    """A loss returning one value per example (``reduction = "none"``) instead of the mean."""
    import torch

    class _Loss(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(n_classes, d_in))

        def scores(self, features):
            return features @ self.weight.T

        def forward(self, features, targets):
            return torch.nn.functional.cross_entropy(self.scores(features), targets, reduction="none")

    return _Loss()


class BrokenTask:
    """A task without ``eval_batches`` and ``probe_batch``."""

    def __init__(self, *, seed):
        self.input_spec = {"kind": "vector", "dim": 3, "output": "pooled"}
        self.n_classes, self.train_size = 2, 10


class StepFailsSGD:
    """SGD whose first step raises: the run fails after the run directory was made."""

    def __new__(cls, params, lr: float = 0.01):
        import torch

        class _Failing(torch.optim.SGD):
            def step(self, closure=None):
                raise RuntimeError("test-step-fails: the device went away")

        return _Failing(params, lr=lr)


class NoRunEngine:
    """An engine that forgot ``run``."""

    def resolve(self, config, *, source, registry):
        return dict(config)


@hookimpl
def overtone_models():
    return [Component("model", "test-item-init", ItemInitModel, "test only: .item() in __init__"),
            Component("model", "test-lambda", LambdaModel, "test only: returns a lambda"),
            Component("model", "test-none", NoneModel, "test only: returns None"),
            Component("model", "test-wrong-width", WrongWidthModel, "test only: declares 16, gives 5"),
            Component("model", "test-class", ClassModel, "test only: returns a class"),
            Component("model", "test-dtype", DtypeModel, "test only: features of another dtype",
                      params={"dtype": Param("int64", choices=("int64", "float64"))}),
            Component("model", "test-nan", NaNModel, "test only: NaN features")]


def ZLoss(*, d_in, n_classes, coefficient: float = 1e-2):
    """Cross-entropy plus ``coefficient * mean(logsumexp(z)^2)`` (a z-loss), reporting both parts."""
    import torch

    class _Loss(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.randn(n_classes, d_in) / d_in**0.5)
            self.parts = {}

        def scores(self, features):
            return features @ self.weight.T

        def forward(self, features, targets):
            z = self.scores(features)
            ce = torch.nn.functional.cross_entropy(z, targets)
            penalty = coefficient * torch.logsumexp(z, -1).pow(2).mean()
            self.parts = {"cross_entropy": ce.detach(), "z_penalty": penalty.detach()}
            return ce + penalty

        def extra_metrics(self):
            return self.parts

    return _Loss()


@hookimpl
def overtone_losses():
    return [Component("loss", "test-z-loss", ZLoss, "test only: cross-entropy + z-loss, both reported",
                      params={"coefficient": Param(1e-2)}),
            Component("loss", "test-no-scores", NoScoresLoss, "test only: no scores()"),
            Component("loss", "test-vector", VectorLoss, "test only: returns a vector")]


@hookimpl
def overtone_tasks():
    return [Component("task", "test-broken-task", BrokenTask, "test only: lacks methods")]


@hookimpl
def overtone_engines():
    return [Component("engine", "test-no-run", NoRunEngine, "test only: lacks run()")]


@hookimpl
def overtone_optimizers():
    return [Component("optimizer", "test-poisoned-sgd", PoisonedSGD, "test only: SGD that writes NaN",
                      params={"lr": Param(0.01), "nan_at": Param(10)}),
            Component("optimizer", "test-step-fails", StepFailsSGD, "test only: step() raises",
                      params={"lr": Param(0.01)}),
            Component("optimizer", "test-no-step", NoStepOptimizer, "test only: no step()",
                      params={"lr": Param(0.01)}),
            Component("optimizer", "test-keyword-params", KeywordParamsOptimizer,
                      "test only: params as a keyword", params={"lr": Param(0.01)})]


class WrongReturn:
    """An analyzer that returns ``returns`` (a dict, a DataArray, an int) or raises RuntimeError."""

    def __init__(self, returns: str = "dict") -> None:
        self.returns = returns

    def __call__(self, ds: xr.Dataset):
        if self.returns == "raise":
            raise RuntimeError("test-wrong: boom")
        return {"dict": {"mean": 1.0}, "dataarray": xr.DataArray([1.0, 2.0], dims="x"), "int": 3,
                "unwritable": xr.Dataset({"v": ("x", np.array([{"a": 1}], dtype=object))}),
                "nan": xr.Dataset({"v": ("x", np.full(2, np.nan))})}[self.returns]


@hookimpl
def overtone_analyzers():
    return [Component("analyzer", "test-norm", EmbeddingNorm, "test only: mean norm of embedding rows",
                      params={"variable": Param("embeddings"), "fail": Param(False)}),
            Component("analyzer", "test-wrong", WrongReturn, "test only: returns the wrong type",
                      params={"returns": Param("dict", choices=("dict", "dataarray", "int", "raise",
                                                                 "unwritable", "nan"))})]
