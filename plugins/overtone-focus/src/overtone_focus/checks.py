"""Validation of hyper-parameters, with errors that name the optimizer, the key and what is allowed."""

from __future__ import annotations

from collections.abc import Sequence

from overtone import ConfigError


def check_lr(owner: str, lr: float) -> None:
    """Raise ConfigError unless ``lr >= 0`` (NaN fails too)."""
    if not (isinstance(lr, (int, float)) and lr >= 0.0):
        raise ConfigError(f"{owner}: lr = {lr} must be a number >= 0, e.g. 0.001")


def check_beta(owner: str, name: str, value: float) -> None:
    """Raise ConfigError unless ``0 <= value < 1``."""
    if not (isinstance(value, (int, float)) and 0.0 <= value < 1.0):
        raise ConfigError(f"{owner}: {name} = {value} must be in [0, 1), e.g. 0.9")


def check_betas(owner: str, betas: Sequence[float]) -> tuple[float, float]:
    """Two momentum rates in [0, 1) (a tuple or a TOML list) as a tuple of floats."""
    if isinstance(betas, (str, bytes)) or not isinstance(betas, Sequence) or len(betas) != 2:
        raise ConfigError(f"{owner}: betas = {betas!r} must hold two values in [0, 1), e.g. [0.9, 0.999]")
    check_beta(owner, "betas[0]", betas[0])
    check_beta(owner, "betas[1]", betas[1])
    return float(betas[0]), float(betas[1])


def check_nonnegative(owner: str, name: str, value: float) -> None:
    """Raise ConfigError unless ``value >= 0``."""
    if not (isinstance(value, (int, float)) and value >= 0.0):
        raise ConfigError(f"{owner}: {name} = {value} must be a number >= 0")


def check_choice(owner: str, name: str, value: str, allowed: Sequence[str]) -> None:
    """Raise ConfigError unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise ConfigError(f"{owner}: {name} = {value!r}; allowed: {', '.join(repr(a) for a in allowed)}")
