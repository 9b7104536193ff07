"""The torch engine: validate a config completely, then train, evaluate, probe and report.

``TorchEngine.run`` reads top to bottom: build the pieces, restore a checkpoint if resuming,
then the loop (batch, forward, backward, clip, step; evaluate, probe, checkpoint), then the
final evaluation, analyzers and report.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from overtone import ConfigError, OvertoneError
from overtone.config import check_sections, resolve_component
from overtone.params import resolve_params

from overtone_torch import schema


class TrainingDiverged(OvertoneError):
    """The loss became NaN or infinite."""


class TorchEngine:
    """Runs ``[task] [model] [loss] [optimizer] [schedule] [train] [[probes]] [[analyzers]]``."""

    # -- validation ---------------------------------------------------------------------

    def resolve(self, config: Mapping[str, Any], *, source: str, registry: Any) -> dict[str, Any]:
        """Validate every section and fill defaults; build the task and (on the meta device) the model."""
        check_sections(config, {**schema.SECTIONS, "versions": "recorded versions"}, source)
        resolved: dict[str, Any] = {}
        for kind, default in (("task", None), ("model", None), ("loss", "cross-entropy"), ("optimizer", "adamw")):
            section = config.get(kind, {})
            if not isinstance(section, Mapping):
                raise ConfigError(f"{source}: '{kind}' must be a section [{kind}]")
            _, resolved[kind] = resolve_component(registry, kind, section, f"{source} [{kind}]", default=default)
        resolved["schedule"] = resolve_params(config.get("schedule", {}), schema.SCHEDULE, f"{source} [schedule]")
        resolved["train"] = resolve_params(config.get("train", {}), schema.TRAIN, f"{source} [train]")
        resolved["probes"] = [
            resolve_params(p, schema.PROBE, f"{source} [[probes]] #{i + 1}")
            for i, p in enumerate(_table_list(config, "probes", source))
        ]
        resolved["analyzers"] = []
        for i, entry in enumerate(_table_list(config, "analyzers", source)):
            where = f"{source} [[analyzers]] #{i + 1}"
            engine_keys = resolve_params({k: v for k, v in entry.items() if k in schema.ANALYZER_KEYS},
                                         schema.ANALYZER_KEYS, where)
            _, params = resolve_component(registry, "analyzer",
                                          {k: v for k, v in entry.items() if k not in schema.ANALYZER_KEYS}, where)
            resolved["analyzers"].append({**params, **engine_keys})
        train = resolved["train"]
        for key in ("steps", "batch_size", "eval_every", "checkpoint_every", "eval_batch_size"):
            if train[key] < 1:
                raise ConfigError(f"{source} [train]: {key} = {train[key]} must be at least 1")
        try:
            task = self._task(resolved, registry, config.get("run", {}).get("seed", 0))
            if task.train_size is not None and train["batch_size"] > task.train_size:
                raise ConfigError(
                    f"[train] batch_size = {train['batch_size']} is larger than the training set "
                    f"({task.train_size} examples of task {resolved['task']['name']!r}); lower batch_size "
                    f"or raise the task's train_fraction")
            with torch.device("meta"):
                self._model_and_loss(resolved, registry, task)
        except ConfigError as exc:
            raise ConfigError(f"{source} {exc}") from exc
        except TypeError as exc:
            raise ConfigError(f"{source}: a component rejected its parameters: {exc}") from exc
        return resolved

    def demo_config(self) -> dict[str, Any]:
        """Grokking: modular addition (p = 97) with an MLP, AdamW and strong weight decay."""
        from overtone.config import load_config

        return load_config(Path(__file__).with_name("demo.toml"))

    # -- building -----------------------------------------------------------------------

    @staticmethod
    def _task(config, registry, seed: int):
        params = {k: v for k, v in config["task"].items() if k != "name"}
        return registry.get("task", config["task"]["name"]).create(seed=seed, **params)

    @staticmethod
    def _model_and_loss(config, registry, task):
        model_params = {k: v for k, v in config["model"].items() if k != "name"}
        features = config["train"]["features"] or model_params.get("d_model") or model_params.get("width") or 128
        if model_params.get("preset") == "gpt2-small":
            features = 768
        model = registry.get("model", config["model"]["name"]).create(
            input_spec=task.input_spec, d_out=features, **model_params)
        loss_params = {k: v for k, v in config["loss"].items() if k != "name"}
        loss = registry.get("loss", config["loss"]["name"]).create(
            d_in=features, n_classes=task.n_classes, **loss_params)
        if getattr(model, "tie_weights", False):
            if loss.weight.shape != model.token_embedding.weight.shape:
                raise ConfigError(
                    f"[model] tie_weights: the loss head {tuple(loss.weight.shape)} and the token "
                    f"embedding {tuple(model.token_embedding.weight.shape)} differ in shape")
            loss.weight = model.token_embedding.weight
        return model, loss

    # -- training -----------------------------------------------------------------------

    def run(self, config: Mapping[str, Any], run_dir: Path, *, resume: bool = False) -> None:
        """Train as configured, writing metrics, probes, analyses, checkpoints and a report."""
        from overtone.registry import registry as default_registry

        from overtone_torch import checkpoint, distributed, probes, report
        from overtone_torch.metrics import MetricsLog
        from overtone_torch.schedule import lr_factor

        registry = default_registry()
        train, seed = config["train"], config["run"]["seed"]
        if train["threads"]:
            torch.set_num_threads(train["threads"])
        device = torch.device("cuda" if train["device"] in ("auto", "cuda") and torch.cuda.is_available() else "cpu")
        if train["device"] == "cuda" and device.type != "cuda":
            raise ConfigError("[train] device = 'cuda' but no CUDA device is available; use 'auto' or 'cpu'")
        world = distributed.setup(device)
        if world.size > 1 and device.type == "cuda":
            device = torch.device("cuda", world.local_rank)
        if train["batch_size"] % world.size:
            raise ConfigError(f"[train] batch_size = {train['batch_size']} must divide evenly over {world.size} processes")

        torch.manual_seed(seed)
        task = self._task(config, registry, seed)
        model, loss_fn = self._model_and_loss(config, registry, task)
        net = _Net(model, loss_fn).to(device)
        optimizer = registry.get("optimizer", config["optimizer"]["name"]).create(
            list(net.parameters()), **{k: v for k, v in config["optimizer"].items() if k != "name"})
        sched = config["schedule"]
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(
            s, total=train["steps"], warmup_steps=sched["warmup_steps"], decay=sched["decay"],
            min_lr_ratio=sched["min_lr_ratio"]))
        generator = torch.Generator().manual_seed(seed + 1)
        metrics = MetricsLog(task.describe())
        start = 0
        if resume:
            state = checkpoint.load(run_dir / "checkpoint.pt")
            net.load_state_dict(state["net"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            checkpoint.restore_rng(generator, state["rng"])
            metrics = MetricsLog.from_state(state["metrics"])
            start = state["step"]
        recorder = probes.ProbeRecorder(config["probes"], task, run_dir if world.main else None, keep_upto=start)
        trainer = net
        if world.size > 1:
            trainer = torch.nn.parallel.DistributedDataParallel(net)
        if train["compile"]:
            trainer = torch.compile(trainer)
        autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda"
                    else contextlib.nullcontext())

        def save_checkpoint(step: int) -> None:
            if world.main:
                checkpoint.save(run_dir / "checkpoint.pt", {
                    "net": net.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "rng": checkpoint.rng_state(generator),
                    "metrics": metrics.state(), "step": step})

        def evaluate(step: int) -> None:
            net.eval()
            with torch.no_grad(), autocast:
                for split in ("train", "eval"):
                    loss, acc = _evaluate(net, task, split, train["eval_batch_size"], device, seed)
                    metrics.add(step, **{f"{split}_loss": loss, f"{split}_acc": acc})
            net.train()
            if world.main:
                metrics.write(run_dir / "metrics.nc")

        bar = _progress(train["steps"], start, disabled=not world.main)
        last_time, last_step = time.perf_counter(), start
        net.train()
        step = start
        try:
            for step in range(start, train["steps"]):
                x, y = task.sample_batch("train", train["batch_size"], generator)
                x, y = x[world.rank::world.size].to(device), y[world.rank::world.size].to(device)
                with autocast:
                    loss = trainer(x, y)
                if not torch.isfinite(loss):
                    raise TrainingDiverged(
                        f"step {step}: the training loss is {loss.item()}; stopped. Metrics so far are in "
                        f"{run_dir / 'metrics.nc'} and the last good checkpoint (step "
                        f"{metrics.last_checkpoint}) in {run_dir / 'checkpoint.pt'}; lower [optimizer] lr "
                        f"or set [train] grad_clip")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if train["grad_clip"]:
                    torch.nn.utils.clip_grad_norm_(net.parameters(), train["grad_clip"])
                optimizer.step()
                scheduler.step()
                done = step + 1
                logged = loss.detach()
                if world.size > 1:  # the global batch's loss, as one process would see it
                    torch.distributed.all_reduce(logged)
                    logged = logged / world.size
                metrics.add(done, train_batch_loss=logged.item(), lr=optimizer.param_groups[0]["lr"])
                if done % train["eval_every"] == 0 or done == train["steps"]:
                    now = time.perf_counter()
                    tokens = x.numel() * world.size * (done - last_step)
                    metrics.add(done, tokens_per_s=tokens / max(now - last_time, 1e-9))
                    last_time, last_step = now, done
                    evaluate(done)
                    bar.set_postfix(loss=f"{loss.item():.3g}", eval_acc=f"{metrics.latest('eval_acc'):.3f}",
                                    tok_s=f"{metrics.latest('tokens_per_s'):.3g}")
                if recorder.due(done, train["steps"]):
                    recorder.record(done, net)
                    self._run_analyzers(config, run_dir, recorder, metrics, done, registry, world.main, final=False)
                if done % train["checkpoint_every"] == 0 or done == train["steps"]:
                    metrics.last_checkpoint = done
                    save_checkpoint(done)
                bar.update(1)
        except TrainingDiverged:
            if world.main:
                metrics.write(run_dir / "metrics.nc")
            raise
        except KeyboardInterrupt:
            if world.main:
                metrics.write(run_dir / "metrics.nc")
                print(f"\ninterrupted at step {step}; the last checkpoint is step {metrics.last_checkpoint}: "
                      f"continue with 'overtone run ... --resume'", file=sys.stderr)
            raise
        finally:
            bar.close()
        distributed.barrier(world)
        if world.main:
            self._run_analyzers(config, run_dir, recorder, metrics, train["steps"], registry, True, final=True)
            report.write(run_dir, config, metrics.dataset(), registry)
        distributed.teardown(world)

    @staticmethod
    def _run_analyzers(config, run_dir, recorder, metrics, step, registry, main, *, final) -> None:
        from overtone.io import write_groups

        if not main or not config["analyzers"]:
            return
        results = {}
        for entry in config["analyzers"]:
            if not final and not (entry["every"] and step % entry["every"] == 0):
                continue
            data = metrics.dataset() if entry["input"] == "metrics" else recorder.dataset()
            if data is None:
                continue
            params = {k: v for k, v in entry.items() if k not in ("name", *schema.ANALYZER_KEYS)}
            results[entry["name"]] = registry.get("analyzer", entry["name"]).create(**params)(data)
        if results:
            write_groups(run_dir / "analysis.nc", results)


class _Net(torch.nn.Module):
    """Model trunk plus loss head: ``forward(x, y)`` is the training loss (one module for DDP)."""

    def __init__(self, model: torch.nn.Module, loss: torch.nn.Module) -> None:
        super().__init__()
        self.model, self.loss = model, loss

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.loss(self.model(x), y)


def _evaluate(net, task, split: str, batch_size: int, device, seed: int) -> tuple[float, float]:
    """Mean loss and accuracy over the eval set, or over a fixed sample of the training set."""
    if split == "eval":
        batches = task.eval_batches(batch_size)
    else:
        n = min(task.train_size or 512, 4096)
        batches = [task.sample_batch("train", n, torch.Generator().manual_seed(seed + 7))]
    total_loss = total_correct = count = 0.0
    for x, y in batches:
        x, y = x.to(device), y.to(device)
        features = net.model(x)
        n = y.numel()
        total_loss += net.loss(features, y).item() * n
        total_correct += (net.loss.scores(features).argmax(-1) == y).sum().item()
        count += n
    return total_loss / count, total_correct / count


def _table_list(config: Mapping[str, Any], key: str, source: str) -> list[Mapping[str, Any]]:
    value = config.get(key, [])
    if isinstance(value, Mapping) or not all(isinstance(v, Mapping) for v in value):
        raise ConfigError(f"{source}: write [[{key}]] (an array of tables), one per entry")
    return list(value)


def _progress(total: int, initial: int, disabled: bool):
    from tqdm import tqdm

    off = disabled or os.environ.get("OVERTONE_PROGRESS") == "0" or not sys.stderr.isatty()
    return tqdm(total=total, initial=initial, disable=off, unit="step", desc="training", dynamic_ncols=True)
