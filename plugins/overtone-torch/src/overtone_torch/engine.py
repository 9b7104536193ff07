"""The torch engine: validate a config completely, then train, evaluate, probe and report.

``TorchEngine.run`` reads top to bottom: build the pieces, restore a checkpoint if resuming,
then the loop (batch, forward, backward, clip, step; every so often: read the losses back,
evaluate, probe, analyze, checkpoint), then the final analyzers and the report.
"""

from __future__ import annotations

import contextlib
import math
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
from overtone_torch.build import TrainNet, create_model_and_loss, create_task, params_of


class TrainingDiverged(OvertoneError):
    """The training loss (or a parameter) became NaN or infinite."""


class AnalyzerFailed(OvertoneError):
    """An analyzer raised on the probes; training itself finished and its files are complete."""


class TorchEngine:
    """Runs ``[task] [model] [loss] [optimizer] [schedule] [train] [[probes]] [[analyzers]]``."""

    def __init__(self) -> None:
        self.registry: Any = None  # the registry resolve() validated against; run() uses it too

    # -- validation ---------------------------------------------------------------------

    def resolve(self, config: Mapping[str, Any], *, source: str, registry: Any) -> dict[str, Any]:
        """Validate every section and fill defaults, raising ConfigError before any work starts.

        Besides each section's keys, types and choices, this builds the task (so a batch
        larger than the training set is caught) and the model and loss on the meta device
        (so shapes, tied weights and weight-probe names are checked without allocating).
        """
        self.registry = registry
        check_sections(config, {**schema.SECTIONS, "versions": "recorded versions"}, source)
        resolved: dict[str, Any] = {}
        for kind, default in schema.DEFAULT_COMPONENTS.items():
            section = config.get(kind, {})
            if not isinstance(section, Mapping):
                raise ConfigError(f"{source}: '{kind}' must be a section [{kind}], not a value")
            _, resolved[kind] = resolve_component(registry, kind, section, f"{source} [{kind}]", default=default)
        for name, spec in (("schedule", schema.SCHEDULE), ("train", schema.TRAIN)):
            section = config.get(name, {})
            if not isinstance(section, Mapping):
                raise ConfigError(f"{source}: '{name}' must be a section [{name}], not a value")
            resolved[name] = resolve_params(section, spec, f"{source} [{name}]")
            for key, value in resolved[name].items():
                if key in schema.MINIMUM and value < schema.MINIMUM[key]:
                    raise ConfigError(f"{source} [{name}]: {key} = {value} must be at least {schema.MINIMUM[key]}")
        if not 0.0 <= resolved["schedule"]["min_lr_ratio"] <= 1.0:
            raise ConfigError(f"{source} [schedule]: min_lr_ratio = {resolved['schedule']['min_lr_ratio']} "
                              f"must be between 0 and 1")
        resolved["probes"] = []
        for i, entry in enumerate(_table_list(config, "probes", source)):
            where = f"{source} [[probes]] #{i + 1}"
            probe = resolve_params(entry, schema.PROBE, where)
            if probe["every"] < 1 or probe["samples"] < 1:
                raise ConfigError(f"{where}: every and samples must be at least 1")
            if probe["kind"] == "weights" and not probe["names"]:
                raise ConfigError(f"{where}: kind = 'weights' needs names = ['model.<parameter>', ...]")
            resolved["probes"].append(probe)
        resolved["analyzers"] = []
        for i, entry in enumerate(_table_list(config, "analyzers", source)):
            where = f"{source} [[analyzers]] #{i + 1}"
            engine_keys = resolve_params({k: v for k, v in entry.items() if k in schema.ANALYZER_KEYS},
                                         schema.ANALYZER_KEYS, where)
            if engine_keys["every"] < 0:
                raise ConfigError(f"{where}: every = {engine_keys['every']} must be 0 (only at the end) or more")
            _, params = resolve_component(registry, "analyzer",
                                          {k: v for k, v in entry.items() if k not in schema.ANALYZER_KEYS}, where)
            if engine_keys["input"] == "probes" and not resolved["probes"]:
                raise ConfigError(f"{where}: analyzer {params['name']!r} reads probes, but no [[probes]] are "
                                  f"configured; add one (e.g. kind = 'embeddings') or set input = 'metrics'")
            resolved["analyzers"].append({**params, **engine_keys})
        self._check_runtime(resolved, source)
        self._check_components(resolved, config, source, registry)
        return resolved

    @staticmethod
    def _check_runtime(config: Mapping[str, Any], source: str) -> None:
        """Device and process-count checks that need no component."""
        train = config["train"]
        if train["device"] == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"{source} [train]: device = 'cuda' but torch sees no CUDA device; "
                              f"use device = 'auto' or 'cpu'")
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if train["batch_size"] % world:
            raise ConfigError(f"{source} [train]: batch_size = {train['batch_size']} does not divide evenly over "
                              f"WORLD_SIZE = {world} processes; choose a multiple of {world}")

    @staticmethod
    def _check_components(config: dict[str, Any], raw: Mapping[str, Any], source: str, registry: Any) -> None:
        """Build the task, and the model and loss on the meta device, to check they fit together."""
        train = config["train"]
        try:
            task = create_task(config, registry, raw.get("run", {}).get("seed", 0))
            if task.train_size is not None and train["batch_size"] > task.train_size:
                raise ConfigError(
                    f"[train] batch_size = {train['batch_size']} is larger than the training set "
                    f"({task.train_size} examples of task {config['task']['name']!r}); lower batch_size "
                    f"to at most {task.train_size} or raise the task's train_fraction")
            try:
                with torch.device("meta"):  # shapes only: no memory, no initialisation cost
                    net = TrainNet(*create_model_and_loss(config, registry, task))
            except (NotImplementedError, RuntimeError):  # an init the meta device lacks (e.g. QR)
                net = TrainNet(*create_model_and_loss(config, registry, task))
            for i, probe in enumerate(config["probes"]):
                where = f"[[probes]] #{i + 1}: kind = {probe['kind']!r}"
                if probe["kind"] == "embeddings" and getattr(net.model, "token_embedding", None) is None:
                    raise ConfigError(f"{where} needs a model with a token_embedding; model "
                                      f"{config['model']['name']!r} on task {config['task']['name']!r} has none")
                if probe["kind"] == "outputs" and task.input_grid() is None:
                    raise ConfigError(f"{where} needs a task with an input grid (modular-arithmetic); "
                                      f"task {config['task']['name']!r} has none")
                if probe["kind"] == "weights":
                    names = dict(net.named_parameters(remove_duplicate=False))
                    for name in probe["names"]:
                        if name not in names:
                            raise ConfigError(f"{where}: no parameter {name!r}; the parameters are: "
                                              f"{', '.join(names)}")
        except ConfigError as exc:
            raise ConfigError(f"{source} {exc}") from exc
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{source}: a component rejected its parameters: {exc}") from exc

    def demo_config(self) -> dict[str, Any]:
        """Grokking: modular addition (p = 97) with an MLP, full-batch AdamW and weight decay 1.

        The config is ``demo.toml`` beside this module; its analyzer (embedding-fourier, from
        overtone-dynamics) is left out when that plugin is not installed.
        """
        from overtone.config import load_config
        from overtone.registry import registry

        config = load_config(Path(__file__).with_name("demo.toml"))
        installed = set((self.registry or registry()).names("analyzer"))
        config["analyzers"] = [a for a in config.get("analyzers", []) if a["name"] in installed]
        return config

    # -- training -----------------------------------------------------------------------

    def run(self, config: Mapping[str, Any], run_dir: Path, *, resume: bool = False) -> None:
        """Train as configured, writing metrics, probes, analyses, checkpoints and a report."""
        from overtone_torch import checkpoint, distributed, probes, report
        from overtone_torch.analyses import Analyses
        from overtone_torch.evaluation import evaluate, train_sample
        from overtone_torch.metrics import MetricsLog
        from overtone_torch.schedule import lr_factor

        if self.registry is None:
            from overtone.registry import registry as default_registry

            self.registry = default_registry()
        registry = self.registry
        train, sched, seed = config["train"], config["schedule"], config["run"]["seed"]
        run_dir = Path(run_dir)

        # -- the pieces ------------------------------------------------------------------
        if train["threads"]:
            torch.set_num_threads(train["threads"])
        use_cuda = train["device"] in ("auto", "cuda") and torch.cuda.is_available()
        device = torch.device("cuda" if use_cuda else "cpu")
        world = distributed.setup(device)
        if use_cuda:
            device = torch.device("cuda", world.local_rank)
            torch.cuda.set_device(device)
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        local_batch = train["batch_size"] // world.size
        eval_batch = train["eval_batch_size"] or local_batch

        torch.manual_seed(seed)
        task = create_task(config, registry, seed)
        net = TrainNet(*create_model_and_loss(config, registry, task)).to(device)
        optimizer = registry.get("optimizer", config["optimizer"]["name"]).create(
            list(net.parameters()), **params_of(config["optimizer"]))
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(
            s, total=train["steps"], warmup_steps=sched["warmup_steps"], decay=sched["decay"],
            min_lr_ratio=sched["min_lr_ratio"]))
        generator = torch.Generator().manual_seed(seed + 1)  # the training data order
        metrics = MetricsLog(_run_attrs(config, task))
        start = 0
        if resume and (run_dir / "checkpoint.pt").exists():
            state = checkpoint.load(run_dir / "checkpoint.pt")
            net.load_state_dict(state["net"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            checkpoint.restore_rng(generator, state["rng"])
            metrics = MetricsLog.from_state(state["metrics"])
            start = state["step"]
        elif resume and world.main:
            print(f"overtone: {run_dir} has no checkpoint yet; starting from step 0", file=sys.stderr)
        recorder = probes.ProbeRecorder(config["probes"], task, run_dir if world.main else None,
                                        total_steps=train["steps"], keep_upto=start,
                                        batch_size=eval_batch)
        analyses = Analyses(config["analyzers"], registry, run_dir)
        trainer = torch.nn.parallel.DistributedDataParallel(net) if world.size > 1 else net
        if train["compile"]:
            trainer = torch.compile(trainer)
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if use_cuda else contextlib.nullcontext()
        tokens_per_example = task.input_spec.get("seq_len", 1) if task.input_spec["kind"] == "tokens" else 0

        # -- what happens every so often -------------------------------------------------
        pending: list[tuple[int, torch.Tensor, float]] = []  # (step, loss on device, lr used)

        def read_losses() -> None:
            """Record the pending steps' losses (one device-to-host copy) and stop on NaN/inf."""
            if not pending:
                return
            values = torch.stack([loss for _, loss, _ in pending]).float()
            if world.size > 1:  # the global batch's loss, as one process would see it
                torch.distributed.all_reduce(values)
                values /= world.size
            for (done, _, lr), value in zip(pending, values.tolist()):
                if not math.isfinite(value):
                    pending.clear()
                    raise TrainingDiverged(_diverged_message(f"the training loss at step {done} is {value}",
                                                             run_dir, metrics))
                metrics.add(done, train_batch_loss=value, lr=lr)
            pending.clear()
            bar.set_postfix(_postfix(metrics), refresh=False)

        def write_metrics() -> None:
            if world.main:
                metrics.write(run_dir / "metrics.nc")

        def write_probes() -> None:
            if world.main:
                recorder.write()

        def run_evaluation(done: int) -> None:
            net.eval()
            with autocast:
                for split, batches in (("train", train_sample(task, eval_batch, seed)),
                                       ("eval", task.eval_batches(eval_batch))):
                    loss, acc = evaluate(net, batches, device)
                    metrics.add(done, **{f"{split}_loss": loss, f"{split}_acc": acc})
            net.train()

        def save_checkpoint(done: int) -> None:
            if not all(torch.isfinite(p).all() for p in net.parameters()):
                raise TrainingDiverged(_diverged_message(f"a parameter is NaN or infinite after step {done}",
                                                         run_dir, metrics))
            metrics.last_checkpoint = done
            if world.main:
                recorder.write()  # the probes a resume from this checkpoint keeps
                checkpoint.save(run_dir / "checkpoint.pt", {
                    "net": net.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "rng": checkpoint.rng_state(generator),
                    "metrics": metrics.state(), "step": done, "world_size": world.size})

        # -- the loop --------------------------------------------------------------------
        on_device = device.type != "cpu"
        constant_lr = not sched["warmup_steps"] and sched["decay"] == "constant"
        bar = _progress(train["steps"], start, disabled=not world.main)
        window_start, window_steps, window_paused = time.perf_counter(), 0, 0.0  # for throughput
        done = start
        net.train()
        try:
            for step in range(start, train["steps"]):
                x, y = task.sample_batch("train", train["batch_size"], generator)  # the global batch
                if world.size > 1:  # this process's slice
                    x = x[world.rank * local_batch:(world.rank + 1) * local_batch]
                    y = y[world.rank * local_batch:(world.rank + 1) * local_batch]
                if on_device:
                    x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                with autocast:
                    loss = trainer(x, y)
                loss.backward()
                if train["grad_clip"]:
                    torch.nn.utils.clip_grad_norm_(net.parameters(), train["grad_clip"])
                lr = optimizer.param_groups[0]["lr"]
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                if not constant_lr:  # a constant rate needs no scheduler step (19 us saved)
                    scheduler.step()
                done, window_steps = step + 1, window_steps + 1
                pending.append((done, loss.detach(), lr))
                bar.update(1)

                last = done == train["steps"]
                due_eval = done % train["eval_every"] == 0 or last
                due_checkpoint = done % train["checkpoint_every"] == 0 or last
                due_probe = world.main and recorder.due(done)
                due_analysis = world.main and analyses.due(done)
                if done % train["log_every"] == 0 or due_eval or due_checkpoint:
                    read_losses()
                if not (due_eval or due_checkpoint or due_probe or due_analysis):
                    continue
                # the rest of this step is not training: its time is left out of the throughput
                work_start = time.perf_counter()
                if due_eval:
                    seconds = work_start - window_start - window_paused
                    examples = train["batch_size"] * window_steps
                    metrics.add(done, examples_per_s=examples / seconds)
                    if tokens_per_example:
                        metrics.add(done, tokens_per_s=examples * tokens_per_example / seconds)
                    if world.main:
                        run_evaluation(done)
                if due_probe:
                    recorder.record(done, net)
                if due_analysis:
                    analyses.run(done, recorder.dataset(), metrics.dataset())
                if due_checkpoint:
                    save_checkpoint(done)
                if due_eval or due_checkpoint:
                    write_metrics()
                    bar.set_postfix(_postfix(metrics))
                window_paused += time.perf_counter() - work_start
                if due_eval:
                    window_start, window_steps, window_paused = time.perf_counter(), 0, 0.0
        except TrainingDiverged:
            bar.close()
            write_metrics()
            write_probes()
            if world.main:
                with contextlib.suppress(Exception):  # the report is a courtesy here; the error matters
                    report.write(run_dir, config, metrics.dataset(), analyses)
            distributed.teardown(world)
            raise
        except KeyboardInterrupt:
            bar.close()
            with contextlib.suppress(TrainingDiverged):
                read_losses()
            write_metrics()
            write_probes()
            if world.main:
                print(f"\ninterrupted after step {done}; the last checkpoint is step {metrics.last_checkpoint}: "
                      f"continue with 'overtone run ... --resume'", file=sys.stderr)
            raise
        bar.close()

        # -- the finished run ------------------------------------------------------------
        distributed.barrier(world)
        if world.main:
            write_metrics()
            analyses.run(train["steps"], recorder.dataset(), metrics.dataset(), final=True)
            path = report.write(run_dir, config, metrics.dataset(), analyses)
        distributed.teardown(world)
        if world.main and analyses.failures:
            raise AnalyzerFailed(
                f"training finished ({run_dir}: metrics, probes, checkpoint and {path.name} are written), "
                f"but {'; '.join(analyses.failures.values())}; rerun it with 'overtone analyze {run_dir} --with NAME'")


def _run_attrs(config: Mapping[str, Any], task: Any) -> dict[str, Any]:
    """Attributes recorded with the metrics: the run, its components, and the task's description."""
    attrs = {"run_name": config["run"]["name"], "seed": config["run"]["seed"], "engine": "torch",
             "torch_version": str(torch.__version__)}
    for kind in ("task", "model", "loss", "optimizer"):
        attrs[kind] = config[kind]["name"]
    attrs.update(task.describe())
    return attrs


def _diverged_message(what: str, run_dir: Path, metrics: Any) -> str:
    kept = (f"the last good checkpoint (step {metrics.last_checkpoint}) is {run_dir / 'checkpoint.pt'}"
            if metrics.last_checkpoint else "no checkpoint was reached")
    return (f"{what}; training stopped. The metrics so far are in {run_dir / 'metrics.nc'} and {kept}. "
            f"Lower [optimizer] lr (or set [train] grad_clip, or add [schedule] warmup_steps)")


def _postfix(metrics: Any) -> dict[str, str]:
    shown = {"loss": "train_batch_loss", "eval_acc": "eval_acc", "tok/s": "tokens_per_s"}
    return {label: f"{metrics.latest(name):.4g}" for label, name in shown.items() if math.isfinite(metrics.latest(name))}


def _table_list(config: Mapping[str, Any], key: str, source: str) -> list[Mapping[str, Any]]:
    value = config.get(key, [])
    if isinstance(value, Mapping) or not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise ConfigError(f"{source}: write [[{key}]] (an array of tables), one per entry")
    return list(value)


def _progress(total: int, initial: int, disabled: bool):
    """A tqdm bar on stderr, off when not a terminal, on other ranks, or with OVERTONE_PROGRESS=0."""
    from tqdm import tqdm

    off = disabled or os.environ.get("OVERTONE_PROGRESS") == "0" or not sys.stderr.isatty()
    return tqdm(total=total, initial=initial, disable=off, unit="step", desc="training", dynamic_ncols=True)
