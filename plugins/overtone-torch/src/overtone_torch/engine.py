"""The torch engine: validate a config completely, then train, evaluate, probe and report.

``TorchEngine.run`` reads top to bottom, as nanoGPT's train.py does: build the pieces (with
the registry and the task that ``resolve`` used), restore a checkpoint if resuming, then one
flat loop (the step's batch; per micro-batch forward and backward; clip, step; every so
often: read the losses back, evaluate, probe, analyze, checkpoint), then the final analyzers
and the report. The loop's helpers below it are plain functions and small objects whose
inputs are their arguments.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from overtone import ConfigError, OvertoneError, Param, PluginError
from overtone.config import check_sections, resolve_component
from overtone.params import resolve_params

from overtone_torch import schema
from overtone_torch.build import (
    TrainNet,
    check_forward,
    create_model_and_loss,
    create_optimizer,
    create_task,
)

#: The engine's own keys in ``[train]`` and in component sections (beside ``schema``'s).
TRAIN_KEYS = {
    "accumulate": Param(1, min=1, help="micro-batches of batch_size per optimizer step (gradient "
                                       "accumulation): a step sees batch_size * accumulate "
                                       "examples, its loss their mean"),
}
ENGINE_KEYS = {
    "optimizer": {"decay": Param("matrices", choices=("matrices", "all"),
                                 help="which parameters weight_decay applies to: weight matrices only "
                                      "(biases, norms, embeddings, loss-head centres exempt) or all")},
}


class TrainingDiverged(OvertoneError):
    """The training loss (or a parameter) became NaN or infinite."""


class AnalyzerFailed(OvertoneError):
    """An analyzer raised on the probes; training itself finished and its files are complete."""


class TorchEngine:
    """Runs ``[task] [model] [loss] [optimizer] [schedule] [train] [[probes]] [[analyzers]]``."""

    #: Sections a resume may change: analyzers read the run's data and never touch its training state.
    resume_may_change = ("analyzers",)

    def __init__(self) -> None:
        self.registry: Any = None  # the registry resolve() validated against; run() uses it too
        self._task: tuple[Any, Any] | None = None  # (its config and seed, the task resolve() built)

    def task(self, config: Mapping[str, Any]) -> Any:
        """The task of ``config``: the one :meth:`resolve` built for it, else built now."""
        key = (dict(config["task"]), config["run"]["seed"])
        if self._task is None or self._task[0] != key:
            self._task = (key, create_task(config, self.registry, config["run"]["seed"]))
        return self._task[1]

    # -- validation ---------------------------------------------------------------------

    def resolve(self, config: Mapping[str, Any], *, source: str, registry: Any) -> dict[str, Any]:
        """Validate every section and fill defaults, raising ConfigError before any work starts.

        Besides each section's keys, types and choices, this builds the task (so a batch
        larger than the training set is caught; :meth:`run` reuses it), the model and loss on
        the meta device, run once on a batch's shapes (so what each factory returns, feature
        widths, tied weights and weight-probe names are checked without allocating), and the
        optimizer on their parameters. ``registry`` is kept for :meth:`run`.
        """
        self.registry = registry
        check_sections(config, {**schema.SECTIONS, "versions": "recorded versions"}, source)
        resolved: dict[str, Any] = {}
        for kind, default in schema.DEFAULT_COMPONENTS.items():
            section = config.get(kind, {})
            if not isinstance(section, Mapping):
                raise ConfigError(f"{source}: '{kind}' must be a section [{kind}], not a value")
            own = ENGINE_KEYS.get(kind, {})  # the engine's keys in a component's section
            _, resolved[kind] = resolve_component(registry, kind, {k: v for k, v in section.items() if k not in own},
                                                  f"{source} [{kind}]", default=default)
            resolved[kind].update(resolve_params({k: v for k, v in section.items() if k in own}, own,
                                                 f"{source} [{kind}]"))
        for name, spec in (("schedule", schema.SCHEDULE), ("train", {**schema.TRAIN, **TRAIN_KEYS})):
            section = config.get(name, {})
            if not isinstance(section, Mapping):
                raise ConfigError(f"{source}: '{name}' must be a section [{name}], not a value")
            resolved[name] = resolve_params(section, spec, f"{source} [{name}]")
        resolved["probes"] = []
        for i, entry in enumerate(_table_list(config, "probes", source)):
            where = f"{source} [[probes]] #{i + 1}"
            probe = resolve_params(entry, schema.PROBE, where)
            if probe["kind"] == "weights" and not probe["names"]:
                raise ConfigError(f"{where}: kind = 'weights' needs names = ['model.<parameter>', ...]")
            resolved["probes"].append(probe)
        resolved["analyzers"] = []
        for i, entry in enumerate(_table_list(config, "analyzers", source)):
            where = f"{source} [[analyzers]] #{i + 1}"
            engine_keys = resolve_params({k: v for k, v in entry.items() if k in schema.ANALYZER_KEYS},
                                         schema.ANALYZER_KEYS, where)
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

    def _check_components(self, config: dict[str, Any], raw: Mapping[str, Any], source: str, registry: Any) -> None:
        """Build the task, and the model and loss on the meta device, to check they fit together."""
        train = config["train"]
        try:
            task = self.task({**config, "run": {"seed": raw.get("run", {}).get("seed", 0)}})
            step_batch = train["batch_size"] * train["accumulate"]
            if task.train_size is not None and step_batch > task.train_size:
                what = (f"batch_size = {train['batch_size']}" if train["accumulate"] == 1 else
                        f"batch_size * accumulate = {train['batch_size']} * {train['accumulate']}")
                raise ConfigError(
                    f"[train] {what} is larger than the training set "
                    f"({task.train_size} examples of task {config['task']['name']!r}); lower it "
                    f"to at most {task.train_size} or raise the task's train_fraction")
            try:
                with torch.device("meta"):  # shapes only: no memory, no initialisation cost
                    net = TrainNet(*create_model_and_loss(config, registry, task))
                check_forward(net, task, registry, config)
            except (NotImplementedError, RuntimeError):  # an op the meta device lacks (e.g. QR, .item())
                net = TrainNet(*create_model_and_loss(config, registry, task))
                check_forward(net, task, registry, config)
            create_optimizer(config, registry, net)  # hyper-parameters and the product's type
            for i, probe in enumerate(config["probes"]):
                where = f"[[probes]] #{i + 1}: kind = {probe['kind']!r}"
                if probe["kind"] == "embeddings" and getattr(net.model, "token_embedding", None) is None:
                    raise ConfigError(f"{where} needs a model with a token_embedding; model "
                                      f"{config['model']['name']!r} on task {config['task']['name']!r} has none")
                if probe["kind"] == "outputs" and task.input_grid() is None:
                    raise ConfigError(f"{where} needs a task with an input grid (modular-arithmetic); "
                                      f"task {config['task']['name']!r} has none")
                if probe["kind"] == "predictions" and task.input_spec.get("output") == "sequence":
                    raise ConfigError(f"{where} needs a task with one output per example; task "
                                      f"{config['task']['name']!r} predicts a sequence")
                if probe["kind"] == "weights":
                    names = dict(net.named_parameters(remove_duplicate=False))
                    for name in probe["names"]:
                        if name not in names:
                            raise ConfigError(f"{where}: no parameter {name!r}; the parameters are: "
                                              f"{', '.join(names)}")
        except ConfigError as exc:
            raise ConfigError(f"{source} {exc}") from exc
        except PluginError as exc:
            raise PluginError(f"{source}: {exc}") from exc
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

    def vectorized(self) -> Any:
        """The pack trainer ``overtone sweep --vectorize`` uses (:mod:`overtone_torch.vectorize`)."""
        from overtone_torch.vectorize import PackTrainer

        return PackTrainer(self.registry)

    # -- training -----------------------------------------------------------------------

    def run(self, config: Mapping[str, Any], run_dir: Path, *, resume: bool = False) -> None:
        """Train as configured, writing metrics, probes, analyses, checkpoints and a report.

        ``config`` is what :meth:`resolve` returned; the run uses the registry that
        ``resolve`` validated it against (and the task it built).
        """
        from overtone_torch import checkpoint, distributed, report
        from overtone_torch.analyses import Analyses
        from overtone_torch.metrics import MetricsLog
        from overtone_torch.probes import ProbeRecorder

        if self.registry is None:
            raise OvertoneError("TorchEngine.run needs the registry its config was validated against: "
                                "call resolve(config, source=..., registry=...) first")
        registry, run_dir = self.registry, Path(run_dir)
        train, seed = config["train"], config["run"]["seed"]
        accumulate = train["accumulate"]
        step_batch = train["batch_size"] * accumulate  # examples per optimizer step, all processes

        # -- the pieces ------------------------------------------------------------------
        device, world = setup_device(train)
        eval_batch = train["eval_batch_size"] or train["batch_size"] // world.size
        torch.manual_seed(seed)
        task = self.task(config)
        net = TrainNet(*create_model_and_loss(config, registry, task)).to(device)
        optimizer = create_optimizer(config, registry, net)
        scheduler = create_scheduler(optimizer, config)
        generator = torch.Generator().manual_seed(seed + 1)  # the training data order
        metrics = MetricsLog(_run_attrs(config, task))
        start = 0
        if resume and (run_dir / "checkpoint.pt").exists():
            start, saved_metrics = checkpoint.restore(run_dir / "checkpoint.pt", net, optimizer, scheduler, generator)
            metrics = MetricsLog.from_state(saved_metrics)
        elif resume and world.main:
            print(f"overtone: {run_dir} has no checkpoint yet; starting from step 0", file=sys.stderr)
        recorder = ProbeRecorder(config["probes"], task, run_dir if world.main else None,
                                 total_steps=train["steps"], keep_upto=start, batch_size=eval_batch)
        analyses = Analyses(config["analyzers"], registry, run_dir)
        ddp = torch.nn.parallel.DistributedDataParallel(net) if world.size > 1 else None
        trainer = torch.compile(ddp or net) if train["compile"] else (ddp or net)
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
        scheduled = bool(config["schedule"]["warmup_steps"]) or config["schedule"]["decay"] != "constant"
        losses = LossReadback()
        reports_extras = callable(getattr(net.loss, "extra_metrics", None))
        # a model that changes its parameters' shapes as it trains (a KAN refining its grid)
        # returns the parameters it replaced: their optimizer state starts afresh
        model_on_step = getattr(net.model, "on_step", None)
        clock = Throughput(step_batch, _tokens_per_example(task))
        bar = _progress(train["steps"], start, disabled=not world.main)

        # -- the loop --------------------------------------------------------------------
        done = start
        net.train()
        try:
            for step in range(start, train["steps"]):
                x, y = task.sample_batch("train", step_batch, generator)  # the step's global batch
                lr = optimizer.param_groups[0]["lr"]
                loss, extras = None, {}
                for i, (xb, yb) in enumerate(micro_batches(x, y, accumulate, world)):
                    with autocast, _sync_gradients(ddp, i == accumulate - 1):
                        micro = trainer(to_device(xb, device), to_device(yb, device))
                        if accumulate > 1:  # the step's loss is the mean over its micro-batches
                            micro = micro / accumulate
                    micro.backward()
                    loss = micro.detach() if loss is None else loss + micro.detach()
                    if reports_extras:
                        extras = add_extras(extras, net.loss.extra_metrics(), accumulate)
                if train["grad_clip"]:
                    torch.nn.utils.clip_grad_norm_(net.parameters(), train["grad_clip"])
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                if scheduled:  # a constant rate needs no scheduler step (19 us saved)
                    scheduler.step()
                done = step + 1
                if callable(model_on_step):
                    for param in model_on_step(done) or ():
                        optimizer.state.pop(param, None)
                losses.add(done, loss, lr, extras)
                clock.step()
                bar.update(1)

                last = done == train["steps"]
                due_eval = done % train["eval_every"] == 0 or last
                due_checkpoint = done % train["checkpoint_every"] == 0 or last
                due_probe = world.main and recorder.due(done)
                due_analysis = world.main and analyses.due(done)
                if done % train["log_every"] == 0 or due_eval or due_checkpoint:
                    losses.read(metrics, world, run_dir)
                    bar.set_postfix(_postfix(metrics), refresh=False)
                if not (due_eval or due_checkpoint or due_probe or due_analysis):
                    continue
                clock.pause()  # the rest of this step is not training: left out of the throughput
                if due_eval:
                    metrics.add(done, **clock.rates())
                    if world.main:
                        metrics.add(done, **evaluate_splits(net, task, eval_batch, seed, device, autocast))
                if due_probe:
                    recorder.record(done, net)
                if due_analysis:
                    analyses.run(done, recorder.dataset(), metrics.dataset())
                if due_checkpoint:
                    check_finite(net, done, run_dir, metrics)
                    metrics.last_checkpoint = done
                    if world.main:
                        recorder.write()  # the probes a resume from this checkpoint keeps
                        checkpoint.save(run_dir / "checkpoint.pt", checkpoint.state(
                            net, optimizer, scheduler, generator, metrics, done, world.size))
                if (due_eval or due_checkpoint) and world.main:
                    metrics.write(run_dir / "metrics.nc")
                    bar.set_postfix(_postfix(metrics))
                clock.resume(restart=due_eval)
        except TrainingDiverged:
            bar.close()
            if world.main:
                metrics.write(run_dir / "metrics.nc")
                recorder.write()
                with contextlib.suppress(Exception):  # the report is a courtesy here; the error matters
                    report.write(run_dir, config, metrics.dataset(), analyses)
            distributed.teardown(world)
            raise
        except KeyboardInterrupt:
            bar.close()
            with contextlib.suppress(TrainingDiverged):
                losses.read(metrics, world, run_dir)
            if world.main:
                metrics.write(run_dir / "metrics.nc")
                recorder.write()
                print(f"\ninterrupted after step {done}; the last checkpoint is step {metrics.last_checkpoint}: "
                      f"continue with 'overtone run ... --resume'", file=sys.stderr)
            raise
        bar.close()

        # -- the finished run ------------------------------------------------------------
        distributed.barrier(world)
        if world.main:
            metrics.write(run_dir / "metrics.nc")
            analyses.run(train["steps"], recorder.dataset(), metrics.dataset(), final=True)
            path = report.write(run_dir, config, metrics.dataset(), analyses)
        distributed.teardown(world)
        if world.main and analyses.failures:
            raise AnalyzerFailed(
                f"training finished ({run_dir}: metrics, probes, checkpoint and {path.name} are written), "
                f"but {'; '.join(analyses.failures.values())}; rerun it with 'overtone analyze {run_dir} --with NAME'")


# -- the loop's helpers: plain functions and small objects with explicit inputs --------------


def setup_device(train: Mapping[str, Any]) -> tuple[torch.device, Any]:
    """The training device and this process's place in the DDP world (joined when under torchrun).

    ``device = "auto"`` or ``"cuda"`` takes CUDA when torch sees it (one GPU per local rank,
    TF32 matmuls allowed); otherwise the CPU. ``threads`` sets torch's CPU threads.
    """
    from overtone_torch import distributed

    if train["threads"]:
        torch.set_num_threads(train["threads"])
    use_cuda = train["device"] in ("auto", "cuda") and torch.cuda.is_available()
    device = torch.device("cuda" if use_cuda else "cpu")
    world = distributed.setup(device)
    if use_cuda:
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    return device, world


def create_scheduler(optimizer: torch.optim.Optimizer, config: Mapping[str, Any]) -> Any:
    """``LambdaLR`` with :func:`~overtone_torch.schedule.lr_factor` of the ``[schedule]`` section."""
    from overtone_torch.schedule import lr_factor

    sched = config["schedule"]
    return torch.optim.lr_scheduler.LambdaLR(optimizer, functools.partial(
        lr_factor, total=config["train"]["steps"], warmup_steps=sched["warmup_steps"], decay=sched["decay"],
        min_lr_ratio=sched["min_lr_ratio"]))


def micro_batches(x: torch.Tensor, y: torch.Tensor, accumulate: int, world: Any):
    """This process's part of each of the ``accumulate`` micro-batches of a step's global batch.

    Micro-batch ``i`` is rows ``[i m, (i + 1) m)`` with ``m = len(y) / accumulate``; process
    ``r`` of ``n`` takes the contiguous ``m / n`` rows ``r`` of it. So the data a step sees
    depends on neither ``accumulate`` nor the number of processes.
    """
    if accumulate == 1 and world.size == 1:
        return ((x, y),)
    micro = len(y) // accumulate
    local = micro // world.size
    starts = [i * micro + world.rank * local for i in range(accumulate)]
    return [(x[s:s + local], y[s:s + local]) for s in starts]


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``t`` on ``device``: on CUDA copied from pinned host memory without blocking the host."""
    if device.type == "cpu":
        return t
    if device.type == "cuda":
        t = t.pin_memory()
    return t.to(device, non_blocking=True)


def _sync_gradients(ddp: Any, sync: bool) -> Any:
    """DDP's ``no_sync()`` on all but a step's last micro-batch (one all-reduce per step)."""
    return ddp.no_sync() if ddp is not None and not sync else contextlib.nullcontext()


class LossReadback:
    """Per-step training losses kept on the device, read back a batch of steps at a time."""

    def __init__(self) -> None:
        # (step, loss on the device, lr used, the loss's extra metrics)
        self.pending: list[tuple[int, torch.Tensor, float, dict[str, Any]]] = []

    def add(self, step: int, loss: torch.Tensor, lr: float, extras: Mapping[str, Any] | None = None) -> None:
        """Keep ``step``'s (detached) loss, learning rate and extra metrics until the next :meth:`read`."""
        self.pending.append((step, loss, lr, dict(extras or {})))

    def read(self, metrics: Any, world: Any, run_dir: Path) -> None:
        """Record the pending losses (one device-to-host copy, all-reduced over processes) in
        ``metrics`` as ``train_batch_loss`` and ``lr``, the loss's extra metrics as
        ``loss_<name>``; raise TrainingDiverged at a NaN/inf loss."""
        if not self.pending:
            return
        pending, self.pending = self.pending, []
        values = _gather([loss for _, loss, _, _ in pending], world)
        for (step, _, lr, _), value in zip(pending, values):
            if not math.isfinite(value):
                raise TrainingDiverged(_diverged_message(f"the training loss at step {step} is {value}",
                                                         run_dir, metrics, before_update=step == 1))
            metrics.add(step, train_batch_loss=value, lr=lr)
        for name in dict.fromkeys(name for *_, extras in pending for name in extras):
            steps = [(step, extras[name]) for step, _, _, extras in pending if name in extras]
            for (step, _), value in zip(steps, _gather([v for _, v in steps], world)):
                metrics.add(step, **{f"loss_{name}": value})


def _gather(values: list[Any], world: Any) -> list[float]:
    """Device scalars (or numbers) as floats in one transfer, averaged over the DDP processes."""
    device = next((v.device for v in values if isinstance(v, torch.Tensor)), torch.device("cpu"))
    stacked = torch.stack([torch.as_tensor(v, dtype=torch.float32, device=device).reshape(()) for v in values])
    if world.size > 1:  # the global batch's value, as one process would see it
        torch.distributed.all_reduce(stacked)
        stacked /= world.size
    return stacked.tolist()


def add_extras(total: dict[str, Any], extras: Any, accumulate: int) -> dict[str, Any]:
    """``total`` plus a micro-batch's ``loss.extra_metrics()`` (each a float or a 0-dim tensor)
    divided by ``accumulate``: the step's value is the mean over its micro-batches."""
    if not isinstance(extras, Mapping):
        raise OvertoneError(f"the loss's extra_metrics() returned a {type(extras).__name__}; expected a dict "
                            f"of name -> float or 0-dim tensor")
    for name, value in extras.items():
        value = value.detach() if isinstance(value, torch.Tensor) else float(value)
        share = value / accumulate if accumulate > 1 else value
        total[name] = share if name not in total else total[name] + share
    return total


class Throughput:
    """Training examples (and tokens) per second since the last evaluation, pauses left out."""

    def __init__(self, examples_per_step: int, tokens_per_example: int) -> None:
        self.examples_per_step, self.tokens_per_example = examples_per_step, tokens_per_example
        self.start, self.steps, self.paused, self.pause_start = time.perf_counter(), 0, 0.0, 0.0

    def step(self) -> None:
        """Count one optimizer step."""
        self.steps += 1

    def pause(self) -> None:
        """Stop the clock (evaluation, probes, analyzers and checkpoints are not training)."""
        self.pause_start = time.perf_counter()

    def rates(self) -> dict[str, float]:
        """``examples_per_s`` (and ``tokens_per_s`` for token inputs) up to the pause."""
        seconds = self.pause_start - self.start - self.paused
        examples = self.examples_per_step * self.steps
        rates = {"examples_per_s": examples / seconds}
        if self.tokens_per_example:
            rates["tokens_per_s"] = examples * self.tokens_per_example / seconds
        return rates

    def resume(self, *, restart: bool) -> None:
        """Start the clock again; ``restart`` begins a new window (after an evaluation)."""
        if restart:
            self.start, self.steps, self.paused = time.perf_counter(), 0, 0.0
        else:
            self.paused += time.perf_counter() - self.pause_start


def evaluate_splits(net: TrainNet, task: Any, batch_size: int, seed: int, device: torch.device,
                    autocast: Any) -> dict[str, float]:
    """``train_loss``, ``train_acc`` (a fixed training sample) and ``eval_loss``, ``eval_acc``;
    for a task with ``skill_of(x)`` and ``skill_labels()`` also ``eval_loss_skill[k]`` and
    ``eval_acc_skill[k]`` per skill (``metrics.nc`` stacks them over a ``skill`` dim)."""
    from overtone_torch.evaluation import evaluate, evaluate_by_skill, train_sample

    values = {}
    net.eval()
    with autocast:
        for split, batches in (("train", train_sample(task, batch_size, seed)),
                               ("eval", task.eval_batches(batch_size))):
            values[f"{split}_loss"], values[f"{split}_acc"] = evaluate(net, batches, device)
        if callable(getattr(task, "skill_of", None)):  # a task of several skills: per-skill eval
            n = len(task.skill_labels())
            losses, accs = evaluate_by_skill(net, task.eval_batches(batch_size), device,
                                             task.skill_of, n)
            values.update({f"eval_loss_skill[{k}]": v for k, v in enumerate(losses)})
            values.update({f"eval_acc_skill[{k}]": v for k, v in enumerate(accs)})
    net.train()
    return values


def check_finite(net: torch.nn.Module, step: int, run_dir: Path, metrics: Any) -> None:
    """Raise TrainingDiverged if a parameter is NaN or infinite (before it reaches a checkpoint)."""
    if not all(torch.isfinite(p).all() for p in net.parameters()):
        raise TrainingDiverged(_diverged_message(f"a parameter is NaN or infinite after step {step}",
                                                 run_dir, metrics))


def _tokens_per_example(task: Any) -> int:
    """Input tokens per example for token tasks (their sequence length); 0 for vector inputs."""
    return task.input_spec.get("seq_len", 1) if task.input_spec["kind"] == "tokens" else 0


def _run_attrs(config: Mapping[str, Any], task: Any) -> dict[str, Any]:
    """Attributes recorded with the metrics: the run, its components, and the task's description."""
    attrs = {"run_name": config["run"]["name"], "seed": config["run"]["seed"], "engine": "torch",
             "torch_version": str(torch.__version__)}
    for kind in ("task", "model", "loss", "optimizer"):
        attrs[kind] = config[kind]["name"]
    attrs.update(task.describe())
    return attrs


def _diverged_message(what: str, run_dir: Path, metrics: Any, *, before_update: bool = False) -> str:
    """One line: what went non-finite, where the run's files are, and what to change.

    ``before_update``: the loss of the very first step, computed before any optimizer update,
    so the learning rate cannot be the cause; the message points at model and loss instead.
    """
    kept = (f"the last good checkpoint (step {metrics.last_checkpoint}) is {run_dir / 'checkpoint.pt'}"
            if metrics.last_checkpoint else "no checkpoint was reached")
    fix = ("It was computed before any optimizer update, so the learning rate is not the cause: "
           "check that the model's features and the loss are finite at initialisation "
           "(overtone.testing.check_model, check_loss)" if before_update else
           "Lower [optimizer] lr (or set [train] grad_clip, or add [schedule] warmup_steps)")
    return (f"{what}; training stopped. The metrics so far are in {run_dir / 'metrics.nc'} and {kept}. {fix}")


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
