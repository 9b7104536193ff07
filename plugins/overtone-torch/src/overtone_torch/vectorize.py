"""Vectorized sweeps: the members of a pack trained as one program (``overtone sweep --vectorize``).

Every member is built exactly as its solo ``overtone run`` builds it (its seed, its task
split, its initialisation, its data order); their parameters are then stacked with a
leading member dim (``torch.func.stack_module_state``) and one forward and backward over
all members runs through ``torch.func.vmap`` of ``torch.func.functional_call`` on a
template of the shared architecture (a pack of MLPs under cross-entropy is stepped by
:mod:`overtone_torch.vectorize_mlp` instead: batched matrix products written out by hand,
forward and backward). :class:`~overtone_torch.vectorize_optim.PackOptimizer`
updates the stacked parameters with per-member hyper-parameters. Evaluation copies each
member's slice into its own module and runs the engine's own evaluation on it.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import sys
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from overtone import ConfigError

from overtone_torch.build import TrainNet, create_model_and_loss, exempt_from_decay
from overtone_torch.vectorize_mlp import batched_mlp_step
from overtone_torch.vectorize_optim import PATH_KEYS, PER_MEMBER, PackOptimizer

#: Models a pack can hold: their forward runs under ``vmap`` (no data-dependent shapes and no
#: member-dependent Python control flow), with dropout off (members would draw their own masks).
MODELS = ("mlp", "transformer")
#: Keys that only change a member's initialisation, so they may differ inside a pack.
INIT_KEYS = {"model": ("init_scale",)}


def member_cross_entropy(*args: Any) -> torch.Tensor:
    """:func:`overtone_torch.losses.cross_entropy.member_cross_entropy` (kept here for callers of this module)."""
    from overtone_torch.losses.cross_entropy import member_cross_entropy as function

    return function(*args)


def vectorizable_loss(component: Any) -> bool:
    """Whether a loss can join a pack: its class defines ``member_forward(params, features, targets,
    values)`` (the loss of one member under ``vmap``, the head's parameters and the per-member
    values as tensors), ``member_values()`` (this member's values, name -> float) and
    ``pack_keys`` (the ``[loss]`` keys that may differ between members)."""
    return all(hasattr(component, name) for name in ("member_forward", "member_values", "pack_keys"))


def _refuse(what: str, fix: str) -> ConfigError:
    return ConfigError(f"--vectorize: {what} cannot be vectorized; {fix}")


def _label(registry: Any, kind: str, name: str) -> str:
    from overtone_torch.build import label

    return label(registry, kind, name)


def pack_key(config: Mapping[str, Any], registry: Any) -> tuple[tuple[str, str], ...]:
    """What every member of a pack shares: the resolved config less its per-member values.

    Per member: ``[run] seed`` and ``name``, the optimizer's values in
    :data:`~overtone_torch.vectorize_optim.PER_MEMBER`, the keys in :data:`INIT_KEYS` and the
    loss's ``pack_keys`` (:func:`vectorizable_loss`).
    Everything else (task, shapes, schedule, steps, ...) is the key, as ``(dotted key, repr)``
    pairs. Raises ConfigError naming a component or setting a pack cannot train.
    """
    model, loss, optimizer = (config[k]["name"] for k in ("model", "loss", "optimizer"))
    if model not in MODELS:
        raise _refuse(_label(registry, "model", model), f"vectorized models: {', '.join(MODELS)}; "
                      f"drop --vectorize to sweep it run by run")
    loss_class = registry.get("loss", loss).load()
    if not vectorizable_loss(loss_class):
        able = [n for n in registry.names("loss") if vectorizable_loss(registry.get("loss", n).load())]
        raise _refuse(_label(registry, "loss", loss), f"vectorized losses: {', '.join(able)} (a loss joins a "
                      f"pack when it defines member_forward, member_values and pack_keys); "
                      f"drop --vectorize to sweep it run by run")
    if optimizer not in PER_MEMBER:
        raise _refuse(_label(registry, "optimizer", optimizer), f"vectorized optimizers: "
                      f"{', '.join(PER_MEMBER)}; drop --vectorize to sweep it run by run")
    train = config["train"]
    unsupported = [
        (f"[train] accumulate = {train.get('accumulate')}", train.get("accumulate", 1) != 1),
        ("[train] compile = true", bool(train.get("compile"))),
        ("[optimizer] amsgrad = true", bool(config["optimizer"].get("amsgrad"))),
        ("[loss] chunk_size", bool(config["loss"].get("chunk_size"))),
        (f"[model] dropout = {config['model'].get('dropout')}", bool(config["model"].get("dropout"))),
        (f"WORLD_SIZE = {os.environ.get('WORLD_SIZE')} (torchrun)", int(os.environ.get("WORLD_SIZE", "1")) > 1),
    ]
    for what, present in unsupported:
        if present:
            raise _refuse(what, "remove it or drop --vectorize")
    own = {"optimizer": PER_MEMBER[optimizer] + PATH_KEYS, "loss": tuple(loss_class.pack_keys), **INIT_KEYS}
    items = []
    for section, values in config.items():
        if section in ("run", "versions"):
            continue
        if not isinstance(values, Mapping):
            items.append((section, repr(values)))
            continue
        items += [(f"{section}.{k}", repr(v)) for k, v in sorted(values.items()) if k not in own.get(section, ())]
    return tuple(sorted(items))


class PackTrainer:
    """Trains a pack of resolved configs (same :func:`pack_key`) as one program."""

    def __init__(self, registry: Any) -> None:
        self.registry = registry

    def key(self, config: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
        """:func:`pack_key` of ``config``."""
        return pack_key(config, self.registry)

    def member_bytes(self, config: Mapping[str, Any]) -> int:
        """Estimated bytes one member of ``config``'s pack holds
        (:func:`overtone_torch.vectorize_memory.member_bytes`); ``--pack-memory`` sizes packs by it."""
        from overtone_torch.vectorize_memory import member_bytes

        return member_bytes(config, self.registry)

    def run(self, configs: Sequence[Mapping[str, Any]], run_dirs: Sequence[Path], *,
            resume: bool = False) -> list[Any]:
        """Train every member; write each one's ``metrics.nc`` into its run directory and return
        the members' metrics Datasets (what those files hold; the sweep combines them without
        reading the files back).

        Member ``i`` gets the metrics its solo run records (``train_batch_loss``, ``lr`` each
        step; ``train_loss``, ``train_acc``, ``eval_loss``, ``eval_acc`` and throughput at
        each evaluation; throughput is the pack's examples per second per member), and its
        ``probes.nc`` and ``analysis.nc``: at their steps the member's slice is copied into
        its own module and the engine's ProbeRecorder and Analyses run on it as in a solo run.

        Every ``checkpoint_every`` steps (and at the end) each member's slice of the pack (its
        parameters, optimizer state, data generator and metrics) goes to its
        ``pack-checkpoint.pt``; with ``resume`` the pack continues from them bit for bit.
        """
        from overtone_torch.analyses import Analyses
        from overtone_torch.build import create_task
        from overtone_torch.engine import (
            Throughput,
            _run_attrs,
            _tokens_per_example,
            evaluate_splits,
            setup_device,
            to_device,
        )
        from overtone_torch.metrics import MetricsLog
        from overtone_torch.probes import ProbeRecorder
        from overtone_torch.schedule import lr_factor

        first = configs[0]
        train, sched = first["train"], first["schedule"]
        device, _ = setup_device(train)
        eval_batch = train["eval_batch_size"] or train["batch_size"]
        seeds = [c["run"]["seed"] for c in configs]
        tasks = [create_task(c, self.registry, c["run"]["seed"]) for c in configs]
        nets = []
        for config, task, seed in zip(configs, tasks, seeds):
            torch.manual_seed(seed)  # each member's initialisation is its solo run's
            nets.append(TrainNet(*create_model_and_loss(config, self.registry, task)).to(device))
        template = copy.deepcopy(nets[0]).to("meta")
        params, buffers, values, pack_loss = stacked_loss(nets, template)
        fast = batched_mlp_step(nets, params)  # MLPs under cross-entropy: batched products by hand
        exempt = exempt_from_decay(nets[0])
        decay_all = first["optimizer"].get("decay", "matrices") == "all"
        decays = {n: decay_all or id(p) not in exempt for n, p in nets[0].named_parameters()}
        optimizer = PackOptimizer(first["optimizer"]["name"], params, [c["optimizer"] for c in configs], decays)
        generators = [torch.Generator().manual_seed(seed + 1) for seed in seeds]
        logs = [MetricsLog(_run_attrs(c, t)) for c, t in zip(configs, tasks)]
        start = 0
        if resume:
            start = _restore(run_dirs, nets, params, buffers, optimizer, generators, logs)
        stopped: dict[int, str] = {i: log.attrs["stopped"] for i, log in enumerate(logs) if "stopped" in log.attrs}
        for i in stopped:
            optimizer.stop(i)
        recorders = [ProbeRecorder(c["probes"], t, Path(d), total_steps=train["steps"], keep_upto=start,
                                   batch_size=eval_batch) for c, t, d in zip(configs, tasks, run_dirs)]
        analyses = [Analyses(c["analyzers"], self.registry, Path(d)) for c, d in zip(configs, run_dirs)]

        eval_sets = stacked_splits(tasks, seeds, eval_batch, device) if fast is not None else None
        clock = Throughput(train["batch_size"], _tokens_per_example(tasks[0]))
        pending: list[tuple[int, torch.Tensor, float]] = []
        clip = train["grad_clip"]
        for step in range(start, train["steps"]):
            batches = [t.sample_batch("train", train["batch_size"], g) for t, g in zip(tasks, generators)]
            x = to_device(torch.stack([b[0] for b in batches]), device)
            y = to_device(torch.stack([b[1] for b in batches]), device)
            factor = lr_factor(step, total=train["steps"], warmup_steps=sched["warmup_steps"],
                               decay=sched["decay"], min_lr_ratio=sched["min_lr_ratio"])
            if fast is not None:  # the members' losses (M,), their gradients in each p.grad
                losses = fast(params, x, y, values["label_smoothing"])
            else:
                losses = pack_loss(params, buffers, x, y, values)  # (M,)
                losses.sum().backward()  # members share no parameter: each gets its own gradient
            if clip:
                clip_per_member(params.values(), clip)
            optimizer.step(factor)
            optimizer.zero_grad()
            done = step + 1
            pending.append((done, losses.detach(), factor))
            clock.step()
            last = done == train["steps"]
            due_eval = done % train["eval_every"] == 0 or last
            due_probe, due_analysis = recorders[0].due(done), analyses[0].due(done)
            due_checkpoint = done % train["checkpoint_every"] == 0 or last
            if not (done % train["log_every"] == 0 or due_eval or due_checkpoint or due_probe or due_analysis):
                continue
            before = len(stopped)
            _read(pending, logs, configs, stopped)
            pending = []
            for i in list(stopped)[before:]:
                print(f"overtone: {stopped[i]}", file=sys.stderr)
                optimizer.stop(i)
            if len(stopped) == len(configs):
                break
            if not (due_eval or due_probe or due_analysis or due_checkpoint):
                continue
            clock.pause()
            rates = clock.rates()
            evals = None
            if due_eval and eval_sets is not None:  # every member at once, by the batched step's forward
                evals = evaluate_pack(fast, params, eval_sets, values["label_smoothing"], eval_batch)
            for i, (net, task, log) in enumerate(zip(nets, tasks, logs)):
                if i in stopped:
                    continue
                if due_probe or due_analysis or (due_eval and evals is None):
                    load_member(net, params, i, buffers)  # the member's own module: the solo run's evaluation and probes
                if due_eval:
                    log.add(done, **rates)
                    log.add(done, **(evals[i] if evals is not None else evaluate_splits(
                        net, task, eval_batch, seeds[i], device, contextlib.nullcontext())))
                if due_probe:
                    recorders[i].record(done, net)
                if due_analysis:
                    analyses[i].run(done, recorders[i].dataset(), log.dataset())
            if due_checkpoint:
                _save(done, run_dirs, nets, params, buffers, optimizer, generators, logs, recorders)
            clock.resume(restart=due_eval)
        failures = []
        datasets = [log.dataset() for log in logs]
        for log, recorder, analysis in zip(logs, recorders, analyses):
            if log.last_checkpoint != train["steps"]:  # else the last checkpoint wrote these metrics
                log.write(Path(recorder.run_dir) / "metrics.nc")
            analysis.run(train["steps"], recorder.dataset(), log.dataset(), final=True)
            recorder.write()
            failures += analysis.failures.values()
        if failures:
            from overtone_torch.engine import AnalyzerFailed

            raise AnalyzerFailed(f"training finished (every member's metrics, probes and analyses are written), "
                                 f"but {'; '.join(failures)}; rerun it with 'overtone analyze RUN_DIR --with NAME'")
        return datasets


def stacked_loss(nets: Sequence[torch.nn.Module], template: torch.nn.Module) -> tuple[
        dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, torch.Tensor], Any]:
    """The pack's training loss over ``nets`` (TrainNets of one architecture; ``template`` a
    copy of the first on the meta device): the stacked parameters (leaves that require grad) and
    buffers with a leading member dim, the members' loss values (name -> ``(M,)`` tensor), and
    ``loss(params, buffers, x, y, values)``, the ``(M,)`` losses of ``vmap`` over the members of
    ``functional_call`` on the template's model and the loss's ``member_forward``."""
    params, buffers = torch.func.stack_module_state(nets)
    params = {n: p.detach().requires_grad_() for n, p in params.items()}
    head = nets[0].loss
    device = next(iter(params.values())).device
    values = {k: torch.tensor([float(n.loss.member_values()[k]) for n in nets], device=device)
              for k in head.member_values()}  # (M,) each: the members' own loss values
    # no dropout in a pack (refused), so eval = train except for batch norm, which trains on
    # batch statistics and updates each member's running averages in its slice of ``buffers``
    model_template = template.model.train(_has_batch_norm(nets[0]))
    ids = {id(p): n for n, p in nets[0].named_parameters()}  # a head tied to the embedding is stacked once
    head_names = {n: ids[id(p)] for n, p in head.named_parameters(remove_duplicate=False)}

    def member_loss(p: dict[str, torch.Tensor], b: dict[str, torch.Tensor], x: torch.Tensor,
                    y: torch.Tensor, v: dict[str, torch.Tensor]) -> torch.Tensor:
        features = torch.func.functional_call(model_template, (_under(p, "model."), _under(b, "model.")), (x,))
        return head.member_forward({n: p[full] for n, full in head_names.items()}, features, y, v)

    vmapped = torch.func.vmap(member_loss)

    def pack_loss(*args: Any) -> torch.Tensor:
        with warnings.catch_warnings():  # attention has no batching rule: vmap loops over members there
            warnings.filterwarnings("ignore", message="There is a performance drop because we have not yet")
            return vmapped(*args)

    return params, buffers, values, pack_loss


def stacked_splits(tasks: Sequence[Any], seeds: Sequence[int], batch_size: int,
                   device: torch.device) -> dict[str, tuple[torch.Tensor, torch.Tensor]] | None:
    """Each member's evaluation examples as :func:`overtone_torch.engine.evaluate_splits` reads
    them (``train``: its fixed training sample; ``eval``: its evaluation split), stacked over the
    members: split -> ``(x (M, N, ...), y (M, N))``. None when a task has skills (per-skill
    evaluation), targets are real numbers, or the members' splits differ in size."""
    from overtone_torch.evaluation import train_sample

    if any(callable(getattr(task, "skill_of", None)) for task in tasks):
        return None
    sets = {}
    for split in ("train", "eval"):
        xs, ys = [], []
        for task, seed in zip(tasks, seeds):
            batches = list(train_sample(task, batch_size, seed) if split == "train" else task.eval_batches(batch_size))
            if not batches:
                return None
            xs.append(torch.cat([b[0] for b in batches]))
            ys.append(torch.cat([b[1] for b in batches]))
        if len({x.shape for x in xs}) > 1 or len({y.shape for y in ys}) > 1 or ys[0].is_floating_point():
            return None
        sets[split] = (torch.stack(xs).to(device), torch.stack(ys).to(device))
    return sets


def evaluate_pack(step: Any, params: Mapping[str, torch.Tensor], sets: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
                  smoothing: torch.Tensor, rows: int) -> list[dict[str, float]]:
    """``train_loss``, ``train_acc``, ``eval_loss``, ``eval_acc`` of every member on its
    :func:`stacked_splits` (mean loss per kept target and accuracy, as
    :func:`overtone_torch.evaluation.evaluate`), by ``step.evaluate`` (a
    :class:`~overtone_torch.vectorize_mlp.BatchedMLPStep`)."""
    members = len(smoothing)
    values: list[dict[str, float]] = [{} for _ in range(members)]
    for split, (x, y) in sets.items():
        total, correct, count = (t.tolist() for t in step.evaluate(params, x, y, smoothing, rows))
        for i in range(members):
            values[i][f"{split}_loss"] = total[i] / max(count[i], 1)
            values[i][f"{split}_acc"] = correct[i] / max(count[i], 1)
    return values


CHECKPOINT = "pack-checkpoint.pt"


#: Threads that write the members' files at a checkpoint (each member's probes, metrics and
#: checkpoint in turn, the members side by side). One: writing ``metrics.nc`` through xarray is
#: Python work under the GIL and the fsyncs are short, so more threads only contend (32 members
#: of bench_ensemble.py, quiet machine: the checkpoint took 1.8-2.0 s with 1 thread, 2.5 with 2,
#: 2.7-3.1 with 8).
IO_THREADS = 1


def _save(step: int, run_dirs: Sequence[Path], nets: Sequence[torch.nn.Module], params: Mapping[str, torch.Tensor],
          buffers: Mapping[str, torch.Tensor], optimizer: PackOptimizer, generators: Sequence[torch.Generator], logs: Sequence[Any],
          recorders: Sequence[Any]) -> None:
    """Each member's slice of the pack into its run directory's :data:`CHECKPOINT` (probes and
    metrics made durable first, as a solo run's checkpoint does); the members are written by
    :data:`IO_THREADS` threads side by side, each member's files in that order."""
    from concurrent.futures import ThreadPoolExecutor

    from overtone_torch import checkpoint

    def member(i: int) -> None:
        net, log, run_dir = nets[i], logs[i], Path(run_dirs[i])
        load_member(net, params, i, buffers)
        log.last_checkpoint = step
        recorders[i].write()
        log.write(run_dir / "metrics.nc")
        checkpoint.save(run_dir / CHECKPOINT, {
            "net": net.state_dict(), "optimizer": optimizer.member_state(i),
            "rng": checkpoint.rng_state(generators[i]), "metrics": log.state(), "step": step})

    with ThreadPoolExecutor(min(IO_THREADS, len(nets))) as pool:
        list(pool.map(member, range(len(nets))))  # re-raises the first member's error


def _restore(run_dirs: Sequence[Path], nets: Sequence[torch.nn.Module], params: Mapping[str, torch.Tensor],
             buffers: Mapping[str, torch.Tensor], optimizer: PackOptimizer, generators: Sequence[torch.Generator], logs: list[Any]) -> int:
    """Load every member's :data:`CHECKPOINT` into the pack; return the step they share (0 when
    none has one yet). Members saved at different steps cannot form one pack: ConfigError."""
    from overtone_torch import checkpoint
    from overtone_torch.metrics import MetricsLog

    paths = [Path(d) / CHECKPOINT for d in run_dirs]
    if not any(p.exists() for p in paths):
        print(f"overtone: no member of the pack of {run_dirs[0]} has a checkpoint yet; starting from step 0",
              file=sys.stderr)
        return 0
    saved = [checkpoint.load(p) for p in paths]  # a missing one: ConfigError naming it
    steps = {s["step"] for s in saved}
    if len(steps) > 1:
        raise ConfigError(f"cannot resume the pack of {run_dirs[0]}: its members' checkpoints are at steps "
                          f"{sorted(steps)}; resume it without --vectorize, or start it again")
    for i, (net, generator, state) in enumerate(zip(nets, generators, saved)):
        net.load_state_dict(state["net"])
        checkpoint.restore_rng(generator, state["rng"])
        logs[i] = MetricsLog.from_state(state["metrics"])
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(torch.stack([dict(net.named_parameters())[name] for net in nets]))
        for name, b in buffers.items():
            b.copy_(torch.stack([dict(net.named_buffers())[name] for net in nets]))
    optimizer.load_member_states([s["optimizer"] for s in saved])
    return steps.pop()


def _read(pending: list[tuple[int, torch.Tensor, float]], logs: Sequence[Any], configs: Sequence[Mapping[str, Any]],
          stopped: dict[int, str]) -> None:
    """Record the pending per-member losses (one transfer) and learning rates.

    A member whose loss is NaN or infinite is stopped: its reason goes into ``stopped`` (member
    index -> one line) and its metrics' ``stopped`` attribute, and from that step on nothing more
    is recorded for it; the other members go on.
    """
    if not pending:
        return
    values = torch.stack([loss for _, loss, _ in pending]).tolist()  # (steps, M)
    for (step, _, factor), row in zip(pending, values):
        for i, (log, value) in enumerate(zip(logs, row)):
            if i in stopped:
                continue
            if not math.isfinite(value):
                stopped[i] = (f"member {configs[i]['run']['name']!r} stopped: the training loss at step {step} is "
                              f"{value}; the other members go on. Lower its [optimizer] lr (or set [train] "
                              f"grad_clip, or add [schedule] warmup_steps)")
                log.attrs["stopped"] = stopped[i]
                continue
            log.add(step, train_batch_loss=value, lr=configs[i]["optimizer"]["lr"] * factor)


def _under(tensors: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries named ``prefix<name>``, as ``name``."""
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


@torch.no_grad()
def clip_per_member(params: Any, max_norm: float) -> None:
    """Scale each member's gradients by ``min(1, max_norm / (||g|| + 1e-6))``, ``||g||`` the 2-norm
    over all of that member's gradients (``torch.nn.utils.clip_grad_norm_`` per member)."""
    grads = [p.grad for p in params if p.grad is not None]
    # as torch's: the norm of the per-tensor norms (no squared copy of a gradient)
    norms = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.flatten(1), dim=1) for g in grads]),
                                     dim=0)  # (M,)
    coef = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(coef.reshape(-1, *([1] * (g.ndim - 1))))


def _has_batch_norm(net: torch.nn.Module) -> bool:
    return any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in net.modules())


@torch.no_grad()
def load_member(net: torch.nn.Module, params: Mapping[str, torch.Tensor], i: int,
                buffers: Mapping[str, torch.Tensor] | None = None) -> None:
    """Copy member ``i``'s slice of the stacked ``params`` (and of the stacked ``buffers``, e.g.
    batch norm's running averages, when given) into ``net``."""
    for name, p in net.named_parameters():
        p.copy_(params[name][i])
    for name, b in (buffers or {}).items():
        dict(net.named_buffers())[name].copy_(b[i])
