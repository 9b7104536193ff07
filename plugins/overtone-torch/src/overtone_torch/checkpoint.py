"""Checkpoints: everything needed to continue a run bit-for-bit, written atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from overtone.io import atomic_target


def save(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` with ``torch.save`` to a temporary file, then rename it over ``path``."""
    with atomic_target(path) as tmp:
        torch.save(state, tmp)


def load(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save`."""
    from overtone import ConfigError

    if not path.exists():
        raise ConfigError(f"cannot resume: {str(path)!r} not found (the run never reached a checkpoint); "
                          f"start it again without --resume after removing its directory")
    return torch.load(path, map_location="cpu", weights_only=False)


def state(net: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, generator: torch.Generator,
          metrics: Any, step: int, world_size: int) -> dict[str, Any]:
    """Everything a resume needs: parameters, optimizer and scheduler state, RNGs, metrics, step."""
    return {"net": net.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "rng": rng_state(generator), "metrics": metrics.state(), "step": step, "world_size": world_size}


def restore(path: Path, net: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
            generator: torch.Generator) -> tuple[int, dict[str, Any]]:
    """Load :func:`state` from ``path`` into the given objects; return the step and the metrics' state."""
    saved = load(path)
    net.load_state_dict(saved["net"])
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    restore_rng(generator, saved["rng"])
    return saved["step"], saved["metrics"]


def rng_state(generator: torch.Generator) -> dict[str, Any]:
    """The data generator's and torch's global RNG states (CPU, and CUDA when present)."""
    state = {"data": generator.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(generator: torch.Generator, state: dict[str, Any]) -> None:
    """Put the RNG states saved by :func:`rng_state` back (CUDA's only when CUDA is present)."""
    generator.set_state(state["data"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
