"""The run schema: the data layout a training engine writes and analyzers read, declared once.

A run directory holds ``metrics.nc`` (dim ``step``), ``probes.nc`` (the probes of this module,
with a leading ``step`` dim) and ``analysis.nc`` (one group per analyzer). Engines and analyzers
import the names, dims and helpers below rather than restating them; ``docs/run-schema.md``
describes the same layout for people.

Importing this module does not import xarray or NumPy (``overtone plugins`` stays light):
only the helpers that take a Dataset import them, when called.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from overtone.errors import DatasetError

if TYPE_CHECKING:
    import numpy as np
    import xarray as xr

#: The leading dim of every probe and metric: optimizer steps done.
STEP = "step"

#: The provenance attribute: one JSON object per line, oldest first (see :func:`add_history`).
HISTORY = "history"


@dataclass(frozen=True)
class Variable:
    """One variable of the layout: its dims (without ``step``) and its attrs.

    ``per_step`` is False for variables that are the same at every step (written once).
    ``coords`` names the coordinates the variable carries, each with its dims.
    """

    name: str
    dims: tuple[str, ...]
    attrs: Mapping[str, str]
    per_step: bool = True
    dtype: str = "float32"
    coords: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def stored_dims(self) -> tuple[str, ...]:
        """The dims as stored: ``(step, *dims)`` for a per-step variable."""
        return (STEP, *self.dims) if self.per_step else self.dims


#: Every fixed-name probe variable, keyed by name. Weights are named per parameter:
#: :func:`weight_variable` and :func:`weight_dims`.
PROBE_VARIABLES: dict[str, Variable] = {v.name: v for v in (
    Variable("embeddings", ("token", "embed_dim"),
             {"long_name": "token embedding vectors (model.token_embedding.weight)", "units": "1"},
             coords={"token_label": ("token",)}),
    Variable("hidden", ("sample", "feature"),
             {"long_name": "features fed to the loss head (last position for sequences) on the "
                           "task's fixed probe batch", "units": "1"}),
    Variable("labels", ("sample",), {"long_name": "class of each probe sample"},
             per_step=False, dtype="int64"),
    Variable("outputs", ("a", "b", "class"),
             {"long_name": "predicted class probabilities over the input grid", "units": "1",
              "output": "probabilities", "description": "softmax of the loss head's scores; "
              "with [[probes]] output = 'scores' the raw scores (attrs output = 'scores')"},
             coords={"a": ("a",), "b": ("b",)}),
    Variable("train_pair", ("a", "b"),
             {"long_name": "1 where the (a, b) pair is in the training split, else 0"},
             per_step=False, dtype="int8"),
    Variable("predictions", ("eval_sample", "output"),
             {"long_name": "model outputs on the evaluation inputs", "units": "1",
              "output": "values", "description": "regression tasks: the loss head's outputs "
              "(output = 'values'); classification: softmax probabilities, or with [[probes]] "
              "output = 'scores' the raw scores"}),
    Variable("inputs", ("eval_sample", "input_dim"),
             {"long_name": "evaluation inputs (coordinates of each evaluation example)", "units": "1"},
             per_step=False),
    Variable("targets", ("eval_sample", "output"),
             {"long_name": "targets of the evaluation inputs (one-hot for classification)", "units": "1"},
             per_step=False),
)}

#: Probe kinds (``[[probes]] kind = ...``) and the variables each writes.
PROBE_KINDS: dict[str, tuple[str, ...]] = {
    "embeddings": ("embeddings",),
    "hidden": ("hidden", "labels"),
    "outputs": ("outputs", "train_pair"),
    "predictions": ("predictions", "inputs", "targets"),  # any task with one output per example
    "weights": (),  # weight_<name> for each parameter named: see weight_variable
}

#: The prefix of weight probe variables.
WEIGHT_PREFIX = "weight_"

#: Variables that hold a representation (one vector per token or sample), in the order an
#: analyzer that takes any representation looks for them.
REPRESENTATIONS: tuple[str, ...] = ("hidden", "embeddings", "embedding", "features")

#: Metrics (``metrics.nc``, dim ``step``): name -> (long_name, units).
METRICS: dict[str, tuple[str, str]] = {
    "train_batch_loss": ("loss on the training batch of each step", "nat"),
    "train_loss": ("mean loss on a fixed sample of the training set (up to 4096 examples)", "nat"),
    "eval_loss": ("mean loss on the evaluation set", "nat"),
    "train_acc": ("accuracy on a fixed sample of the training set", "1"),
    "eval_acc": ("accuracy on the evaluation set", "1"),
    "lr": ("learning rate used by the step (of the first parameter group)", "1"),
    "tokens_per_s": ("input tokens trained on per second (all processes) since the last evaluation; "
                     "evaluation, probe, analyzer and checkpoint time excluded", "1/s"),
    "examples_per_s": ("training examples (or sequences) per second (all processes) since the last "
                       "evaluation; evaluation, probe, analyzer and checkpoint time excluded", "1/s"),
    "eval_loss_skill": ("loss of each skill on the evaluation set (dims step, skill; tasks with "
                        "skill_of)", "nat"),
    "eval_acc_skill": ("accuracy of each skill on the evaluation set (dims step, skill)", "1"),
}


def weight_variable(parameter: str) -> str:
    """The probe variable of parameter ``parameter``: ``weight_`` + its name, dots as ``_``."""
    return WEIGHT_PREFIX + parameter.replace(".", "_")


def weight_dims(parameter: str, ndim: int) -> tuple[str, ...]:
    """Dims (without ``step``) of a weight probe: ``<name>_out, <name>_in`` for a matrix,
    ``<name>_dim0, <name>_dim1, ...`` for any other rank (``<name>``: dots as ``_``).

    Each weight has its own dims because two matrices rarely share shapes.
    """
    safe = parameter.replace(".", "_")
    if ndim == 2:
        return f"{safe}_out", f"{safe}_in"
    return tuple(f"{safe}_dim{i}" for i in range(ndim))


def weight_attrs(parameter: str) -> dict[str, str]:
    """Attrs of a weight probe variable."""
    return {"long_name": f"parameter {parameter}", "parameter": parameter, "units": "1"}


def accumulation_dtype_name(*dtypes: str) -> str:
    """The dtype sums and reductions run in: ``"float64"`` when any input is float64, else
    ``"float32"`` (bfloat16/float16 are too coarse for a softmax or a squared distance).

    Names may carry a module prefix (``"torch.float64"``); the result has none.
    """
    return "float64" if any(str(d).rsplit(".", 1)[-1] == "float64" for d in dtypes) else "float32"


# -- provenance --------------------------------------------------------------------------


def add_history(target: Any, entry: Mapping[str, Any]) -> Any:
    """Append one provenance entry to ``target.attrs["history"]`` and return ``target``.

    ``entry`` names the ``component`` (required) and may give ``kind``, ``plugin``,
    ``version`` and ``params``; ``time`` (UTC, ISO 8601) is added when missing. The attribute
    is a string of JSON objects, one per line, oldest first, so it survives netCDF and Zarr
    unchanged and reads back with :func:`history_entries`.
    """
    if not entry.get("component"):
        raise ValueError("a history entry needs a 'component' (what did the work)")
    record = {"time": entry.get("time") or datetime.now(timezone.utc).isoformat(timespec="seconds")}
    for key in ("component", "kind", "plugin", "version"):
        if entry.get(key) is not None:
            record[key] = str(entry[key])
    record["params"] = dict(entry.get("params") or {})
    record.update({k: v for k, v in entry.items() if k not in record and k != "time"})
    line = json.dumps(record, sort_keys=False, default=str)
    previous = str(target.attrs.get(HISTORY, "")).strip()
    target.attrs[HISTORY] = f"{previous}\n{line}" if previous else line
    return target


def history_entries(target: Any) -> list[dict[str, Any]]:
    """The entries of ``target.attrs["history"]``, oldest first; a line that is not a JSON
    object (free text written by other tools) comes back as ``{"text": line}``."""
    entries = []
    for line in str(target.attrs.get(HISTORY, "")).splitlines():
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            value = None
        entries.append(value if isinstance(value, dict) else {"text": line})
    return entries


# -- helpers on datasets -----------------------------------------------------------------


def recorded_steps(da: xr.DataArray) -> np.ndarray:
    """Boolean mask over ``step``: True where ``da`` holds data, i.e. is not NaN everywhere.

    All probes of a run share one ``step`` dim, so a probe taken less often than another is
    NaN at the other's steps. A NaN inside a recorded step is data (and an analyzer's error).
    Works chunk by chunk on dask-backed data. Non-float variables are recorded at every step.
    """
    import numpy as np

    if STEP not in da.dims:
        raise DatasetError(f"{da.name!r} has no {STEP!r} dim; its dims: {da.dims}")
    if not np.issubdtype(da.dtype, np.floating):
        return np.ones(da.sizes[STEP], dtype=bool)
    other = [d for d in da.dims if d != STEP]
    present = da.notnull().any(other) if other else da.notnull()
    return np.asarray(present.values, dtype=bool)


def complete_steps(ds: xr.Dataset, variable: str | None = None) -> xr.Dataset:
    """``ds`` at the steps where ``variable`` (else every variable with a ``step`` dim) was
    recorded (:func:`recorded_steps`); with ``variable``, the other per-step variables are left
    out (they would be NaN at these steps), the step-free ones (``labels``) kept."""
    import numpy as np

    if STEP not in ds.dims:
        return ds
    if variable is not None and variable in ds.data_vars:
        names = [variable] if STEP in ds[variable].dims else []
        ds = ds[[variable, *[n for n in ds.data_vars if n != variable and STEP not in ds[n].dims]]]
    else:
        names = [n for n in ds.data_vars if STEP in ds[n].dims]
    keep = np.ones(ds.sizes[STEP], dtype=bool)
    for name in names:
        keep &= recorded_steps(ds[name])
    return ds if keep.all() else ds.isel({STEP: np.flatnonzero(keep)})


def drop_unrecorded_steps(da: xr.DataArray, who: str) -> xr.DataArray:
    """``da`` without the steps where it was not recorded (:func:`recorded_steps`); raises
    :class:`DatasetError` naming ``who`` when it was recorded at no step."""
    import numpy as np

    if STEP not in da.dims:
        return da
    keep = recorded_steps(da)
    if not keep.any():
        raise DatasetError(f"{who}: {da.name!r} is NaN at every step; nothing to analyze")
    return da if keep.all() else da.isel({STEP: np.flatnonzero(keep)})


def pick_variable(
    ds: xr.Dataset | xr.DataArray,
    variable: str | None,
    candidates: Sequence[str],
    who: str,
    *,
    prefix: str | None = None,
) -> xr.DataArray:
    """The variable ``variable`` of ``ds``; when it is None, the first of ``candidates``
    present, else the first (sorted) data variable whose name starts with ``prefix``.

    A DataArray is returned as it is. Raises :class:`DatasetError` naming ``who`` and the
    variables the dataset has when nothing matches.
    """
    import xarray as xr

    if isinstance(ds, xr.DataArray):
        return ds
    if not isinstance(ds, xr.Dataset):
        raise DatasetError(f"{who}: expected an xarray.Dataset, got {type(ds).__name__}")
    names = ", ".join(map(str, ds.data_vars)) or "(none)"
    if variable is not None:
        if variable not in ds.variables:
            raise DatasetError(f"{who}: no variable {variable!r} in the dataset; it has: {names}; "
                               "set variable= to one of them")
        return ds[variable]
    for name in candidates:
        if name in ds.data_vars:
            return ds[name]
    if prefix is not None:
        matches = sorted(str(n) for n in ds.data_vars if str(n).startswith(prefix))
        if matches:
            return ds[matches[0]]
    wanted = ", ".join([*candidates, *([f"{prefix}*"] if prefix else [])])
    raise DatasetError(f"{who}: found none of the variables {wanted} in the dataset (it has: "
                       f"{names}); set variable= to the one to analyze")
