"""Validation of hyper-parameters, with errors that say what is allowed."""

from __future__ import annotations

from collections.abc import Sequence

from overtone import ConfigError


def check_lr(lr: float) -> None:
    if not lr >= 0.0:
        raise ConfigError(f"lr = {lr} must be >= 0")


def check_beta(name: str, value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise ConfigError(f"{name} = {value} must be in [0, 1)")


def check_betas(betas: Sequence[float]) -> tuple[float, float]:
    if len(betas) != 2:
        raise ConfigError(f"betas = {list(betas)} must hold two values, e.g. [0.9, 0.999]")
    check_beta("betas[0]", betas[0])
    check_beta("betas[1]", betas[1])
    return float(betas[0]), float(betas[1])


def check_nonnegative(name: str, value: float) -> None:
    if not value >= 0.0:
        raise ConfigError(f"{name} = {value} must be >= 0")
