"""Metrics gathered during training, as an xarray Dataset with dim ``step``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

DESCRIPTIONS = {
    "train_batch_loss": ("loss on the training batch of each step", "nat"),
    "train_loss": ("mean loss on a fixed sample of the training set", "nat"),
    "eval_loss": ("mean loss on the evaluation set", "nat"),
    "train_acc": ("accuracy on a fixed sample of the training set", "1"),
    "eval_acc": ("accuracy on the evaluation set", "1"),
    "lr": ("learning rate after the step", "1"),
    "tokens_per_s": ("input tokens processed per second since the last evaluation", "1/s"),
}


class MetricsLog:
    """Values by step and name; missing values become NaN in the Dataset."""

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        self.rows: dict[int, dict[str, float]] = {}
        self.attrs = dict(attrs or {})
        self.last_checkpoint = 0

    def add(self, step: int, **values: float) -> None:
        self.rows.setdefault(step, {}).update({k: float(v) for k, v in values.items()})

    def latest(self, name: str) -> float:
        for step in sorted(self.rows, reverse=True):
            if name in self.rows[step]:
                return self.rows[step][name]
        return math.nan

    def state(self) -> dict[str, Any]:
        return {"rows": self.rows, "attrs": self.attrs, "last_checkpoint": self.last_checkpoint}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> MetricsLog:
        log = cls(state["attrs"])
        log.rows = {int(k): dict(v) for k, v in state["rows"].items()}
        log.last_checkpoint = state["last_checkpoint"]
        return log

    def dataset(self):
        import numpy as np
        import xarray as xr

        steps = sorted(self.rows)
        names = sorted({name for row in self.rows.values() for name in row})
        data = {}
        for name in names:
            values = np.array([self.rows[s].get(name, np.nan) for s in steps])
            long_name, units = DESCRIPTIONS.get(name, (name, "1"))
            data[name] = ("step", values, {"long_name": long_name, "units": units})
        attrs = {k: v for k, v in self.attrs.items() if isinstance(v, (int, float, str))}
        return xr.Dataset(data, coords={"step": ("step", np.array(steps, dtype=np.int64), {"long_name": "optimizer steps done"})},
                          attrs=attrs)

    def write(self, path: Path) -> None:
        from overtone.io import write_dataset

        write_dataset(self.dataset(), path)
