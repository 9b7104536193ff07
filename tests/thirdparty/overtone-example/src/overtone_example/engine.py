"""A minimal engine: fits y = X w by gradient descent, with checkpoints and resume."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from overtone import ConfigError, Param
from overtone.config import check_sections
from overtone.io import atomic_target, write_dataset
from overtone.params import resolve_params

DATA = {"n_samples": Param(64), "dim": Param(4), "noise": Param(0.1)}
TRAIN = {
    "steps": Param(100, help="gradient steps"),
    "lr": Param(0.1),
    "checkpoint_every": Param(10),
    "stop_at": Param(None, type=int, help="stop early (simulates an interruption)"),
}


class LinregEngine:
    """Least squares ``min_w ||X w - y||^2 / n`` by gradient descent ``w <- w - lr * grad``."""

    def resolve(self, config: Mapping[str, Any], *, source: str, registry: Any) -> dict[str, Any]:
        check_sections(config, {"run": "run", "data": "data", "train": "training"}, source)
        resolved = {
            "data": resolve_params(config.get("data", {}), DATA, f"{source} [data]"),
            "train": resolve_params(config.get("train", {}), TRAIN, f"{source} [train]"),
        }
        if resolved["train"]["steps"] < 1:
            raise ConfigError(f"{source} [train]: steps = {resolved['train']['steps']} must be >= 1")
        return resolved

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
