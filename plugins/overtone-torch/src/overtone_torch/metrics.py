"""Metrics gathered during training, as an xarray Dataset with dim ``step``."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from overtone.runschema import METRICS as DESCRIPTIONS  # name -> (long_name, units)

#: A per-skill value's name in the log, e.g. ``eval_loss_skill[3]`` (skill 3, counted from 0).
SKILL_NAME = re.compile(r"(.+)\[(\d+)\]")


class MetricsLog:
    """Values by step and name; missing values become NaN in the Dataset.

    ``last_checkpoint`` is the step of the newest checkpoint written (0: none yet).
    """

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        self.rows: dict[int, dict[str, float]] = {}
        self.newest: dict[str, tuple[int, float]] = {}  # name -> (step, value) of its newest value
        self.attrs = dict(attrs or {})
        self.last_checkpoint = 0

    def add(self, step: int, **values: float) -> None:
        """Record ``values`` (name -> number) at ``step``."""
        row = self.rows.setdefault(step, {})
        for name, value in values.items():
            row[name] = float(value)
            if step >= self.newest.get(name, (-1, 0.0))[0]:
                self.newest[name] = (step, float(value))

    def latest(self, name: str) -> float:
        """The value of ``name`` at the newest step that has one (NaN if none)."""
        return self.newest.get(name, (0, math.nan))[1]

    def state(self) -> dict[str, Any]:
        """Everything needed to continue the log (stored in the checkpoint)."""
        return {"rows": self.rows, "attrs": self.attrs, "last_checkpoint": self.last_checkpoint}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> MetricsLog:
        """The log as :meth:`state` saved it."""
        log = cls(state["attrs"])
        for step in sorted(state["rows"]):
            log.add(int(step), **state["rows"][step])
        log.last_checkpoint = state["last_checkpoint"]
        return log

    def dataset(self):
        """An ``xr.Dataset`` with dim ``step``; each variable has ``long_name`` and ``units``."""
        import numpy as np
        import xarray as xr

        steps = sorted(self.rows)
        names = sorted({name for row in self.rows.values() for name in row})
        data = {}
        per_skill: dict[str, dict[int, str]] = {}
        for name in names:
            match = SKILL_NAME.fullmatch(name)
            if match:  # eval_loss_skill[3] -> eval_loss_skill (step, skill)
                per_skill.setdefault(match[1], {})[int(match[2])] = name
                continue
            values = np.array([self.rows[s].get(name, np.nan) for s in steps])
            extra = (f"{name[len('loss_'):]} on the training batch, reported by the loss's extra_metrics()", "1")
            long_name, units = DESCRIPTIONS.get(name, extra if name.startswith("loss_") else (name, "1"))
            data[name] = ("step", values, {"long_name": long_name, "units": units})
        for base, columns in per_skill.items():
            values = np.array([[self.rows[s].get(columns.get(k, ""), np.nan)
                                for k in range(max(columns) + 1)] for s in steps])
            what = "loss" if "loss" in base else "accuracy"
            data[base] = (("step", "skill"), values,
                          {"long_name": f"{what} of each skill on the evaluation set",
                           "units": "nat" if what == "loss" else "1"})
        attrs = {k: (str(v) if isinstance(v, str) else v) for k, v in self.attrs.items()
                 if isinstance(v, (int, float, str))}
        coords = {"step": ("step", np.array(steps, dtype=np.int64), {"long_name": "optimizer steps done"})}
        if per_skill:
            n = max(max(columns) for columns in per_skill.values()) + 1
            coords["skill"] = ("skill", np.arange(1, n + 1), {"long_name": "skill (task) index"})
        return xr.Dataset(data, coords=coords, attrs=attrs)

    def write(self, path: Path) -> None:
        """Write the dataset to netCDF atomically (``overtone.io.atomic_target``), through
        h5netcdf's own API (:func:`write_small_netcdf`): the file xarray would write, in about
        half the time, which counts when a pack writes the metrics of every member."""
        from overtone.io import atomic_target

        with atomic_target(path) as target:
            write_small_netcdf(self.dataset(), target)


def write_small_netcdf(ds: Any, path: Path) -> None:
    """Write an in-memory ``xr.Dataset`` of numeric NumPy variables with h5netcdf's ``File``
    API: dimensions, each variable with its attrs (floating variables with ``_FillValue`` NaN,
    as xarray writes them), the dataset's attrs. ``xr.open_dataset`` reads back a dataset
    identical to ``ds``; anything else (dask arrays, strings, encodings) goes through
    ``ds.to_netcdf`` instead."""
    import h5netcdf
    import numpy as np

    plain = all(isinstance(v.data, np.ndarray) and v.dtype.kind in "fiu" and not v.encoding
                for v in ds.variables.values())
    if not plain:
        ds.to_netcdf(path, engine="h5netcdf")
        return
    with h5netcdf.File(path, "w") as f:
        f.dimensions = dict(ds.sizes)
        for name in [*ds.dims, *(n for n in ds.variables if n not in ds.dims)]:
            if name not in ds.variables:
                continue
            var = ds.variables[name]
            fill = {"fillvalue": np.nan} if var.dtype.kind == "f" else {}
            created = f.create_variable(name, var.dims, data=var.values, **fill)
            created.attrs.update(var.attrs)
        f.attrs.update(ds.attrs)
