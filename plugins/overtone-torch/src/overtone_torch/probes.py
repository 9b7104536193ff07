"""Probes: model state turned into xarray with a leading ``step`` dim, streamed to probes.nc.

The layout (variable names, dims, attrs) is the run schema's (:mod:`overtone.runschema`,
docs/run-schema.md). Each ``[[probes]]`` entry records at its own steps (multiples of its
``every``, and the last step); each recorded step is appended to probes.nc at once
(``overtone.io.append_step``: one unlimited ``step`` dim, one compressed chunk per variable
and step), so memory does not grow with the steps taken. A variable is NaN at the steps where
its probe was not due (those cost no disk space). A resume cuts probes.nc back to its
checkpoint's step, so the steps it retakes are written once, as in a run never interrupted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr
from overtone import ConfigError, runschema
from overtone.runschema import (
    PROBE_VARIABLES,
    STEP,
    complete_steps,  # the run schema's; analyses.py imports it from here
    weight_attrs,
    weight_dims,
    weight_variable,
)

__all__ = ["FILENAME", "TRAIN_PAIR", "ProbeRecorder", "complete_steps"]

#: The file a run's probes go to, in its run directory.
FILENAME = "probes.nc"

#: Step-free (a, b) mask written with an outputs probe: 1 where the pair is a training pair.
TRAIN_PAIR = runschema.PROBE_VARIABLES["train_pair"].name


class ProbeRecorder:
    """Records the configured probes at their steps, appending each to ``run_dir/probes.nc``.

    ``keep_upto`` is the step of the checkpoint a run resumes from: the steps probes.nc
    holds after it are dropped (0: a new run, probes.nc starts empty). Without ``run_dir``
    (a DDP process other than the first) nothing is recorded.
    """

    def __init__(self, probes: list[dict[str, Any]], task: Any, run_dir: Path | None, *, total_steps: int,
                 keep_upto: int = 0, batch_size: int = 2048) -> None:
        self.probes, self.task, self.run_dir = probes, task, run_dir
        self.total_steps, self.batch_size = total_steps, batch_size
        self.path = Path(run_dir) / FILENAME if run_dir is not None else None
        for probe in probes:  # refused before training, not at the first probe step
            if probe.get("kind") == "hidden" and probe.get("split", "eval") == "train":
                self._train_split()
        self._reader: xr.Dataset | None = None
        if self.path is not None and self.path.exists():
            from overtone.io import truncate_steps

            if keep_upto:  # resuming: keep what the checkpoint covers
                truncate_steps(self.path, keep_upto)
            else:
                self.path.unlink()

    def due_probes(self, step: int) -> list[dict[str, Any]]:
        """The probes that record at ``step``: their ``every`` divides it, or it is the last step."""
        return [p for p in self.probes if step % p["every"] == 0 or step == self.total_steps]

    def due(self, step: int) -> bool:
        """Whether any probe records at ``step``."""
        return bool(self.due_probes(step))

    @torch.no_grad()
    def record(self, step: int, net: torch.nn.Module) -> None:
        """Evaluate every probe due at ``step`` (in eval mode) and append them to probes.nc."""
        if self.path is None:
            return
        from overtone.io import append_step

        append_step(self.path, self.snapshot(step, net))

    @torch.no_grad()
    def snapshot(self, step: int, net: torch.nn.Module) -> xr.Dataset:
        """The probes due at ``step`` as one Dataset (per-step variables with ``step`` of length 1)."""
        was_training = net.training
        net.eval()
        variables: dict[str, xr.DataArray] = {}
        for probe in self.due_probes(step):
            variables.update(getattr(self, f"_{probe['kind']}")(net, probe))
        net.train(was_training)
        fixed = {k for k in variables if k in PROBE_VARIABLES and not PROBE_VARIABLES[k].per_step}
        fixed |= {TRAIN_PAIR} & set(variables)
        data = {k: v if k in fixed else v.expand_dims({STEP: [step]}) for k, v in variables.items()}
        snapshot = xr.Dataset(data, coords={STEP: (STEP, np.array([step], dtype=np.int64),
                                                      {"long_name": "optimizer steps done"})})
        snapshot.attrs.update(self.task.describe())
        from overtone_torch import __version__

        runschema.add_history(snapshot, {"component": "probes", "kind": "engine", "plugin": "overtone-torch",
                                         "version": __version__, "params": {"probes": self.probes}})
        return snapshot

    def write(self) -> None:
        """Make the probes recorded so far durable (fsync) and release the file.

        Each step is on disk once :meth:`record` returns; the engine calls this with each
        checkpoint, so the probes a resume keeps are on the disk before the checkpoint is.
        """
        self._close_reader()
        if self.path is not None and self.path.exists():
            from overtone.io import fsync_file

            fsync_file(self.path)

    def dataset(self) -> xr.Dataset | None:
        """Every step recorded so far, read lazily from probes.nc (None before the first).

        Dask-backed, one chunk per step: an analyzer loads only what it reads.
        """
        if self.path is None or not self.path.exists():
            return None
        self._close_reader()
        # opened read-write (nothing is written through it): HDF5 lets the recorder's next
        # append open the same file then, which a read-only handle would refuse
        store = xr.backends.H5NetCDFStore.open(self.path, mode="a")
        self._reader = xr.open_dataset(store, chunks={STEP: 1})
        return self._reader

    def _close_reader(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    # -- probe kinds (names, dims and attrs: overtone.runschema) ----------------------------

    def _embeddings(self, net, probe):
        spec = PROBE_VARIABLES["embeddings"]
        weight = net.model.token_embedding.weight.detach().float().cpu().numpy().copy()
        labels = self.task.token_labels() or [str(i) for i in range(len(weight))]
        return {spec.name: xr.DataArray(weight, dims=spec.dims, coords={"token_label": ("token", labels)},
                                        attrs=dict(spec.attrs))}

    def _hidden(self, net, probe):
        hidden, labels = PROBE_VARIABLES["hidden"], PROBE_VARIABLES["labels"]
        x, y = self._probe_batch(probe)
        features = self._batched(net, net.model, x)
        if features.dim() == 3:  # sequences: the last position's features, and its target
            features = features[:, -1]
        if y.dim() == 2:
            y = y[:, -1]
        return {
            hidden.name: xr.DataArray(features.numpy().copy(), dims=hidden.dims, attrs=dict(hidden.attrs)),
            labels.name: xr.DataArray(y.cpu().numpy().astype(labels.dtype), dims=labels.dims,
                                      attrs=dict(labels.attrs)),
        }

    def _probe_batch(self, probe):
        """The hidden probe's fixed batch: the task's ``probe_batch`` (evaluation examples), or
        with ``split = "train"`` the first ``samples`` training examples of a task holding its
        splits in memory (``task.x["train"]``, ``task.y["train"]``), as neural collapse is defined
        on the training features (Papyan, Han and Donoho 2020)."""
        n = probe["samples"]
        if probe.get("split", "eval") == "eval":
            return self.task.probe_batch(n)
        x, y = self._train_split()
        return x[:n], y[:n]

    def _train_split(self):
        """The task's in-memory training tensors ``(x, y)``, or a ConfigError naming the fix."""
        x, y = getattr(self.task, "x", None), getattr(self.task, "y", None)
        if not (isinstance(x, dict) and isinstance(y, dict) and "train" in x and "train" in y):
            raise ConfigError(f"[[probes]] hidden: split = 'train' needs a task that holds its training "
                              f"examples in memory ({type(self.task).__name__} does not); use split = 'eval'")
        return x["train"], y["train"]

    def _outputs(self, net, probe):
        """Softmax probabilities over the input grid, or with ``output = "scores"`` the loss
        head's raw scores (logits), which restricted/excluded-loss analyses need; plus the
        step-free ``train_pair (a, b)``: 1 where the pair is in the training split."""
        spec = PROBE_VARIABLES["outputs"]
        x, coords = self.task.input_grid()
        scores = probe.get("output", "probabilities") == "scores"
        attrs = dict(spec.attrs)
        if scores:
            attrs.update(long_name="loss-head scores (logits) over the input grid", output="scores",
                         description="the loss head's scores before any softmax")
            values = self._batched(net, lambda xb: net.loss.scores(net.model(xb)).float(), x)
        else:
            values = self._batched(net, lambda xb: torch.softmax(net.loss.scores(net.model(xb)).float(), -1), x)
        na, nb = len(coords["a"]), len(coords["b"])
        grid = {"a": coords["a"], "b": coords["b"]}
        out = {spec.name: xr.DataArray(values.numpy().reshape(na, nb, values.shape[-1]), dims=spec.dims,
                                       coords=grid, attrs=attrs)}
        mask = self._train_pairs(coords)
        if mask is not None:
            out[TRAIN_PAIR] = xr.DataArray(mask, dims=("a", "b"), coords=grid, attrs={
                "long_name": "pair (a, b) is in the training split", "units": "1"})
        return out

    def _predictions(self, net, probe):
        """The model's outputs on every evaluation example (``task.eval_batches``), with the
        step-free inputs and targets, for tasks whose inputs are not the (a, b) grid (regression
        on sinusoids, images). Regression tasks: the loss head's outputs; classification: softmax
        probabilities (or with ``output = "scores"`` the raw scores) against one-hot targets."""
        specs = {name: PROBE_VARIABLES[name] for name in runschema.PROBE_KINDS["predictions"]}
        regression = getattr(self.task, "target", None) == "regression"
        scores = probe.get("output", "probabilities") == "scores"
        if regression or scores:
            function = lambda xb: net.loss.scores(net.model(xb)).float()  # noqa: E731
        else:
            function = lambda xb: torch.softmax(net.loss.scores(net.model(xb)).float(), -1)  # noqa: E731
        outputs, inputs, targets = [], [], []
        for xb, yb in self.task.eval_batches(self.batch_size):
            outputs.append(self._batched(net, function, xb))
            inputs.append(xb.reshape(len(xb), -1).double().cpu())
            targets.append(yb.cpu())
        values = torch.cat(outputs).reshape(sum(len(x) for x in inputs), -1)
        y = torch.cat(targets)
        y = y.reshape(len(y), -1).float() if regression else torch.nn.functional.one_hot(y, values.shape[-1]).float()
        output_kind = "values" if regression else ("scores" if scores else "probabilities")
        attrs = dict(specs["predictions"].attrs) | {"output": output_kind}
        dims = {name: spec.dims for name, spec in specs.items()}
        return {
            "predictions": xr.DataArray(values.numpy().copy(), dims=dims["predictions"], attrs=attrs),
            "inputs": xr.DataArray(torch.cat(inputs).numpy().astype(np.float32), dims=dims["inputs"],
                                   attrs=dict(specs["inputs"].attrs)),
            "targets": xr.DataArray(y.numpy(), dims=dims["targets"], attrs=dict(specs["targets"].attrs)),
        }

    def _train_pairs(self, coords) -> np.ndarray | None:
        """1 where (a, b) is a training pair, over the grid's coords (None if the task has no
        (a, b) training inputs)."""
        inputs = getattr(self.task, "x", None)
        x_train = inputs.get("train") if isinstance(inputs, dict) else None
        if x_train is None or x_train.dim() != 2 or x_train.shape[1] != 2:
            return None
        index_a = {int(v): i for i, v in enumerate(coords["a"])}
        index_b = {int(v): i for i, v in enumerate(coords["b"])}
        mask = np.zeros((len(coords["a"]), len(coords["b"])), dtype=np.int8)
        for a, b in x_train.cpu().tolist():
            if a in index_a and b in index_b:
                mask[index_a[a], index_b[b]] = 1
        return mask

    def _weights(self, net, probe):
        params = dict(net.named_parameters(remove_duplicate=False))
        out = {}
        for name in probe["names"]:  # checked against the model by TorchEngine.resolve
            value = params[name].detach().float().cpu().numpy().copy()
            out[weight_variable(name)] = xr.DataArray(value, dims=weight_dims(name, value.ndim),
                                                      attrs=weight_attrs(name))
        return out

    def _batched(self, net, function, x: torch.Tensor) -> torch.Tensor:
        """``function`` applied ``batch_size`` rows at a time on the model's device; float32 on the CPU."""
        device = next(net.parameters()).device
        return torch.cat([function(x[i:i + self.batch_size].to(device)).float().cpu()
                          for i in range(0, len(x), self.batch_size)])
