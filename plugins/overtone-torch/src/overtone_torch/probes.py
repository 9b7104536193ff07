"""Probes: model state turned into xarray with a leading ``step`` dim, saved to probes.nc."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import xarray as xr


class ProbeRecorder:
    """Records the configured probes at their steps and rewrites ``probes.nc`` atomically."""

    def __init__(self, probes: list[dict[str, Any]], task: Any, run_dir: Path | None, keep_upto: int = 0) -> None:
        self.probes, self.task, self.run_dir = probes, task, run_dir
        self.snapshots: list[xr.Dataset] = []
        path = run_dir / "probes.nc" if run_dir else None
        if keep_upto and path is not None and path.exists():  # resuming: keep what the checkpoint covers
            from overtone.io import open_dataset

            with open_dataset(path) as old:
                kept = old.sel(step=old.step <= keep_upto).load()
            self.snapshots = [kept.sel(step=[s]) for s in kept.step.values]

    def due(self, step: int, total: int) -> bool:
        return any(step % p["every"] == 0 or step == total for p in self.probes)

    def record(self, step: int, net: torch.nn.Module) -> None:
        """Evaluate every probe due at ``step`` and append it."""
        was_training = net.training
        net.eval()
        variables: dict[str, xr.DataArray] = {}
        with torch.no_grad():
            for probe in self.probes:
                variables.update(getattr(self, f"_{probe['kind']}")(net, probe))
        net.train(was_training)
        snapshot = xr.Dataset(variables).expand_dims(step=[step])
        for name, value in self.task.describe().items():
            snapshot.attrs[name] = value
        self.snapshots.append(snapshot)
        if self.run_dir is not None:
            from overtone.io import write_dataset

            write_dataset(self.dataset(), self.run_dir / "probes.nc")

    def dataset(self) -> xr.Dataset | None:
        if not self.snapshots:
            return None
        ds = xr.concat(self.snapshots, dim="step", join="outer", combine_attrs="override")
        if "labels" in ds and "step" in ds["labels"].dims:  # the probe batch is fixed: one label per sample
            ds["labels"] = ds["labels"].dropna("step", how="all").isel(step=0, drop=True).astype("int64")
        return ds

    # -- probe kinds --------------------------------------------------------------------

    def _embeddings(self, net, probe):
        embedding = getattr(net.model, "token_embedding", None)
        if embedding is None:
            return {}
        weight = embedding.weight.detach().float().cpu().numpy().copy()
        labels = self.task.token_labels() or [str(i) for i in range(len(weight))]
        return {"embeddings": xr.DataArray(weight, dims=("token", "embed_dim"), coords={"token_label": ("token", labels)},
                                           attrs={"long_name": "token embedding vectors"})}

    def _hidden(self, net, probe):
        x, y = self.task.probe_batch(probe["samples"])
        device = next(net.parameters()).device
        features = net.model(x.to(device))
        if features.dim() == 3:
            features = features[:, -1]
        return {
            "hidden": xr.DataArray(features.float().cpu().numpy().copy(), dims=("sample", "feature"),
                                   attrs={"long_name": "features fed to the loss head"}),
            "labels": xr.DataArray(y.cpu().numpy(), dims=("sample",), attrs={"long_name": "class of each sample"}),
        }

    def _outputs(self, net, probe):
        grid = self.task.input_grid()
        if grid is None:
            return {}
        x, coords = grid
        device = next(net.parameters()).device
        probabilities = torch.softmax(net.loss.scores(net.model(x.to(device))).float(), dim=-1).cpu().numpy()
        shape = (len(coords["a"]), len(coords["b"]), probabilities.shape[-1])
        return {"outputs": xr.DataArray(probabilities.reshape(shape), dims=("a", "b", "class"),
                                        coords={"a": coords["a"], "b": coords["b"]},
                                        attrs={"long_name": "predicted class probabilities over the input grid",
                                               "output": "probabilities"})}

    def _weights(self, net, probe):
        params = dict(net.named_parameters())
        out = {}
        for name in probe["names"]:
            if name not in params:
                from overtone import ConfigError

                raise ConfigError(f"[[probes]] weights: no parameter {name!r}; have {', '.join(params)}")
            value = params[name].detach().float().cpu().numpy().copy()
            dims = ("out", "in") if value.ndim == 2 else tuple(f"{name}_dim{i}" for i in range(value.ndim))
            out[f"weight_{name.replace('.', '_')}"] = xr.DataArray(value, dims=dims)
        return out
