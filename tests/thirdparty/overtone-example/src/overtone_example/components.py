"""The components' implementations (imported only when used)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from overtone import DatasetError, Param
from overtone.config import check_sections
from overtone.io import atomic_target, write_dataset
from overtone.params import resolve_params


class Moments:
    """Mean and standard deviation of ``variable`` over ``dim``."""

    def __init__(self, variable: str = "train_loss", dim: str = "step") -> None:
        self.variable, self.dim = variable, dim

    def __call__(self, ds: xr.Dataset) -> xr.Dataset:
        if self.variable not in ds:
            raise DatasetError(f"moments: no variable {self.variable!r}; have {', '.join(map(str, ds.data_vars))}")
        data = ds[self.variable]
        if self.dim not in data.dims:
            raise DatasetError(f"moments: {self.variable!r} has no dim {self.dim!r}; pass dim=NAME")
        return xr.Dataset({"mean": data.mean(self.dim), "std": data.std(self.dim)})

    def plot(self, result: xr.Dataset):
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots()
        ax.bar(["mean", "std"], [float(result["mean"]), float(result["std"])])
        return fig


class Demean:
    """Subtract each spectrum's mean along ``frequency``; lazy on dask input."""

    def __init__(self, variable: str = "spectra") -> None:
        self.variable = variable

    def __call__(self, ds: xr.Dataset) -> xr.Dataset:
        if self.variable not in ds:
            raise DatasetError(f"demean: no variable {self.variable!r}; pass variable=NAME")
        out = ds.copy()
        data = ds[self.variable]
        out[self.variable] = (data - data.mean("frequency")).assign_attrs(data.attrs)
        return out  # overtone records the step (name, plugin, params) in history


DATA = {"n_samples": Param(64, min=2), "dim": Param(4, min=1), "noise": Param(0.1, min=0.0)}
TRAIN = {
    "steps": Param(100, min=1, help="gradient steps"),
    "lr": Param(0.1, min=0.0),
    "checkpoint_every": Param(10, min=1),
    "stop_at": Param(None, type=int, min=0, help="stop early (simulates an interruption)"),
}


class LinregEngine:
    """Least squares ``min_w ||X w - y||^2 / n`` by gradient descent ``w <- w - lr * grad``."""

    def resolve(self, config: Mapping[str, Any], *, source: str, registry: Any) -> dict[str, Any]:
        check_sections(config, {"run": "run", "data": "data", "train": "training"}, source)
        return {
            "data": resolve_params(config.get("data", {}), DATA, f"{source} [data]"),
            "train": resolve_params(config.get("train", {}), TRAIN, f"{source} [train]"),
        }

    def demo_config(self) -> dict[str, Any]:
        return {"run": {"engine": "linreg"}, "train": {"steps": 20}}

    def run(self, config: Mapping[str, Any], run_dir: Path, *, resume: bool = False) -> None:
        data, train = config["data"], config["train"]
        rng = np.random.default_rng(config["run"]["seed"])
        x = rng.normal(size=(data["n_samples"], data["dim"]))
        y = x @ rng.normal(size=data["dim"]) + data["noise"] * rng.normal(size=data["n_samples"])
        state_path = run_dir / "checkpoint.json"
        w, losses, start = np.zeros(data["dim"]), [], 0
        if resume and state_path.exists():
            state = json.loads(state_path.read_text())
            w, losses, start = np.array(state["w"]), state["losses"], state["step"]
        stop = train["stop_at"] or train["steps"]
        for step in range(start, min(stop, train["steps"])):
            residual = x @ w - y
            losses.append(float(residual @ residual / len(y)))
            w = w - train["lr"] * 2 * x.T @ residual / len(y)
            if (step + 1) % train["checkpoint_every"] == 0:
                with atomic_target(state_path) as tmp:
                    tmp.write_text(json.dumps({"w": w.tolist(), "losses": losses, "step": step + 1}))
        metrics = xr.Dataset(
            {"train_loss": ("step", np.array(losses), {"long_name": "mean squared error"})},
            coords={"step": np.arange(len(losses))},
        )
        write_dataset(metrics, run_dir / "metrics.nc")
