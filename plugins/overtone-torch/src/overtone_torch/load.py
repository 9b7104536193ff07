"""A finished (or checkpointed) run's task, model and loss, rebuilt for one's own analysis."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from overtone import ConfigError

from overtone_torch.build import TrainNet, create_model_and_loss


@dataclass
class LoadedRun:
    """What :func:`load_run` returns: the run's resolved ``config``, its ``task``, the ``net``
    (``net.model`` the trunk, ``net.loss`` the head and criterion) in eval mode with the
    checkpoint's parameters, and the checkpoint's ``step``."""

    config: dict[str, Any]
    task: Any
    net: TrainNet
    step: int
    device: torch.device

    @property
    def model(self) -> torch.nn.Module:
        """The trunk: inputs to features."""
        return self.net.model

    @property
    def loss(self) -> torch.nn.Module:
        """The head and criterion: ``loss(features, targets)``, ``loss.scores(features)``."""
        return self.net.loss

    def evaluate(self, split: str = "eval", batch_size: int = 512) -> dict[str, float]:
        """``{"loss": ..., "acc": ...}`` over the task's evaluation set (``"eval"``) or the fixed
        training sample the engine evaluates (``"train"``), as the engine computes them."""
        from overtone_torch.evaluation import evaluate, train_sample

        if split not in ("train", "eval"):
            raise ValueError(f"split = {split!r}; choose 'train' or 'eval'")
        batches = (self.task.eval_batches(batch_size) if split == "eval"
                   else train_sample(self.task, batch_size, self.config["run"]["seed"]))
        loss, acc = evaluate(self.net, batches, self.device)
        return {"loss": loss, "acc": acc}


def load_run(run_dir: str | Path, *, registry: Any = None, device: str | torch.device = "cpu") -> LoadedRun:
    """Rebuild a run's task, model and loss from ``run_dir/config.toml`` and ``checkpoint.pt``.

    The config is validated again with ``registry`` (default: the installed plugins), the
    task is built under the run's seed, and the checkpoint's parameters are loaded into the
    model and loss (tied weights stay tied), on ``device``, in eval mode.
    """
    from overtone.config import load_config
    from overtone.registry import registry as installed
    from overtone.runs import resolve_experiment

    from overtone_torch import checkpoint

    run_dir = Path(run_dir)
    if not (run_dir / "config.toml").is_file():
        raise ConfigError(f"{str(run_dir)!r} holds no run (no config.toml); give a directory 'overtone run' wrote")
    registry = installed() if registry is None else registry
    saved = load_config(run_dir / "config.toml")
    engine, config = resolve_experiment(saved, source=str(run_dir / "config.toml"), default_name=run_dir.name,
                                        registry=registry)
    state = checkpoint.load(run_dir / "checkpoint.pt")
    task = engine.task(config)
    torch.manual_seed(config["run"]["seed"])
    net = TrainNet(*create_model_and_loss(config, registry, task))
    net.load_state_dict(state["net"])
    device = torch.device(device)
    return LoadedRun(config=config, task=task, net=net.to(device).eval(), step=int(state["step"]), device=device)
