"""Probes: model state turned into xarray with a leading ``step`` dim, saved to probes.nc.

Each ``[[probes]]`` entry records at its own steps (multiples of its ``every``, and the last
step). probes.nc holds the union of those steps; a variable is NaN at steps where its probe
was not due. Variables:

- ``embeddings (step, token, embed_dim)``: ``model.token_embedding.weight``, coord ``token_label``.
- ``hidden (step, sample, feature)``: the features the loss head sees on the task's fixed
  probe batch (last position for sequences); ``labels (sample)`` their classes.
- ``outputs (step, a, b, class)``: softmax probabilities of every input pair of a modular task.
- ``weight_<name> (step, <name>_out, <name>_in)``: the named parameters (dots become ``_``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr


class ProbeRecorder:
    """Records the configured probes at their steps; :meth:`write` saves them to ``probes.nc``."""

    def __init__(self, probes: list[dict[str, Any]], task: Any, run_dir: Path | None, *, total_steps: int,
                 keep_upto: int = 0, batch_size: int = 2048) -> None:
        self.probes, self.task, self.run_dir = probes, task, run_dir
        self.total_steps, self.batch_size = total_steps, batch_size
        self.snapshots: list[xr.Dataset] = []
        path = run_dir / "probes.nc" if run_dir else None
        if keep_upto and path is not None and path.exists():  # resuming: keep what the checkpoint covers
            from overtone.io import open_dataset

            with open_dataset(path) as old:
                kept = old.sel(step=old.step <= keep_upto).load()
            self.snapshots = [kept.sel(step=[s]) for s in kept.step.values]

    def due_probes(self, step: int) -> list[dict[str, Any]]:
        """The probes that record at ``step``: their ``every`` divides it, or it is the last step."""
        return [p for p in self.probes if step % p["every"] == 0 or step == self.total_steps]

    def due(self, step: int) -> bool:
        """Whether any probe records at ``step``."""
        return bool(self.due_probes(step))

    @torch.no_grad()
    def record(self, step: int, net: torch.nn.Module) -> None:
        """Evaluate every probe due at ``step`` (in eval mode) and append the snapshot."""
        was_training = net.training
        net.eval()
        variables: dict[str, xr.DataArray] = {}
        for probe in self.due_probes(step):
            variables.update(getattr(self, f"_{probe['kind']}")(net, probe))
        net.train(was_training)
        snapshot = xr.Dataset({k: v for k, v in variables.items() if k != "labels"}).expand_dims(step=[step])
        if "labels" in variables:
            snapshot["labels"] = variables["labels"]
        snapshot.attrs.update(self.task.describe())
        self.snapshots.append(snapshot)

    def write(self) -> None:
        """Rewrite ``probes.nc`` atomically with every snapshot so far (compressed, one chunk per step).

        The engine calls this with each checkpoint and when the run ends or stops; a resume
        keeps the snapshots up to its checkpoint's step.
        """
        data = self.dataset()
        if self.run_dir is None or data is None:
            return
        from overtone.io import write_dataset

        for variable in data.data_vars.values():
            if variable.dims[:1] == ("step",) and variable.dtype.kind == "f":
                # NaN-filled steps (another probe's schedule) cost next to nothing compressed
                variable.encoding = {"zlib": True, "complevel": 1, "chunksizes": (1, *variable.shape[1:])}
        write_dataset(data, self.run_dir / "probes.nc")

    def dataset(self) -> xr.Dataset | None:
        """Every snapshot so far concatenated along ``step`` (None before the first)."""
        if not self.snapshots:
            return None
        # variables without a step dim (labels, token_label) are the same at every step: set them once
        fixed: dict[str, tuple[xr.DataArray, bool]] = {}
        for snapshot in self.snapshots:
            for name in (*snapshot.data_vars, *snapshot.coords):
                if "step" not in snapshot[name].dims and name not in snapshot.dims and name not in fixed:
                    fixed[name] = (snapshot[name], name in snapshot.coords)
        ds = xr.concat([s.drop_vars(list(fixed), errors="ignore") for s in self.snapshots], dim="step",
                       join="outer", combine_attrs="override")
        for name, (value, is_coord) in fixed.items():
            if is_coord:
                ds = ds.assign_coords({name: value})
            else:
                ds[name] = value
        return ds


    # -- probe kinds --------------------------------------------------------------------

    def _embeddings(self, net, probe):
        weight = net.model.token_embedding.weight.detach().float().cpu().numpy().copy()
        labels = self.task.token_labels() or [str(i) for i in range(len(weight))]
        return {"embeddings": xr.DataArray(
            weight, dims=("token", "embed_dim"), coords={"token_label": ("token", labels)},
            attrs={"long_name": "token embedding vectors (model.token_embedding.weight)"})}

    def _hidden(self, net, probe):
        x, y = self.task.probe_batch(probe["samples"])
        features = self._batched(net, net.model, x)
        if features.dim() == 3:  # sequences: the last position's features, and its target
            features = features[:, -1]
        if y.dim() == 2:
            y = y[:, -1]
        return {
            "hidden": xr.DataArray(features.numpy().copy(), dims=("sample", "feature"),
                                   attrs={"long_name": "features fed to the loss head (last position for "
                                                       "sequences) on the task's fixed probe batch"}),
            "labels": xr.DataArray(y.cpu().numpy().astype(np.int64), dims=("sample",),
                                   attrs={"long_name": "class of each probe sample"}),
        }

    def _outputs(self, net, probe):
        x, coords = self.task.input_grid()
        probabilities = self._batched(net, lambda xb: torch.softmax(net.loss.scores(net.model(xb)).float(), -1), x)
        shape = (len(coords["a"]), len(coords["b"]), probabilities.shape[-1])
        return {"outputs": xr.DataArray(
            probabilities.numpy().reshape(shape), dims=("a", "b", "class"),
            coords={"a": coords["a"], "b": coords["b"]},
            attrs={"long_name": "predicted class probabilities over the input grid",
                   "output": "probabilities", "description": "softmax of the loss head's scores"})}

    def _weights(self, net, probe):
        params = dict(net.named_parameters(remove_duplicate=False))
        out = {}
        for name in probe["names"]:  # checked against the model by TorchEngine.resolve
            value = params[name].detach().float().cpu().numpy().copy()
            safe = name.replace(".", "_")
            # dims per weight (two matrices rarely share shapes): <name>_out, <name>_in
            dims = (f"{safe}_out", f"{safe}_in") if value.ndim == 2 else tuple(f"{safe}_dim{i}" for i in range(value.ndim))
            out[f"weight_{safe}"] = xr.DataArray(value, dims=dims, attrs={"long_name": f"parameter {name}",
                                                                         "parameter": name})
        return out

    def _batched(self, net, function, x: torch.Tensor) -> torch.Tensor:
        """``function`` applied ``batch_size`` rows at a time on the model's device; float32 on the CPU."""
        device = next(net.parameters()).device
        return torch.cat([function(x[i:i + self.batch_size].to(device)).float().cpu()
                          for i in range(0, len(x), self.batch_size)])


def complete_steps(ds: xr.Dataset, variable: str | None = None) -> xr.Dataset:
    """``ds`` at the steps where ``variable`` (else every variable with a step dim) was recorded.

    Probes record on their own schedules, so a variable is NaN at the other probes' steps;
    analyzers get only the steps they can use.
    """
    names = [variable] if variable in ds.data_vars else [n for n in ds.data_vars if "step" in ds[n].dims]
    keep = np.ones(ds.sizes["step"], dtype=bool)
    for name in names:
        if "step" in ds[name].dims:
            other = [d for d in ds[name].dims if d != "step"]
            keep &= ds[name].notnull().all(other).values if other else ds[name].notnull().values
    if variable in ds.data_vars:  # drop the others' NaN steps from what the analyzer sees
        ds = ds[[variable, *[n for n in ds.data_vars if "step" not in ds[n].dims]]]
    return ds.isel(step=np.flatnonzero(keep))
