"""torch's own optimizers, with the multi-tensor (foreach) path where available."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def _betas(betas: Sequence[float]) -> tuple[float, float]:
    from overtone import ConfigError

    if len(betas) != 2:
        raise ConfigError(f"[optimizer] betas = {list(betas)} must have two values, e.g. [0.9, 0.999]")
    return float(betas[0]), float(betas[1])


def adamw(params, lr: float = 1e-3, betas: Sequence[float] = (0.9, 0.999), eps: float = 1e-8,
          weight_decay: float = 0.01, foreach: bool = True) -> torch.optim.AdamW:
    """AdamW (Loshchilov & Hutter 2019): Adam with decoupled weight decay."""
    return torch.optim.AdamW(params, lr=lr, betas=_betas(betas), eps=eps, weight_decay=weight_decay,
                             foreach=foreach)


def adam(params, lr: float = 1e-3, betas: Sequence[float] = (0.9, 0.999), eps: float = 1e-8,
         weight_decay: float = 0.0, foreach: bool = True) -> torch.optim.Adam:
    """Adam (Kingma & Ba 2015), L2 weight decay added to the gradient."""
    return torch.optim.Adam(params, lr=lr, betas=_betas(betas), eps=eps, weight_decay=weight_decay,
                            foreach=foreach)


def sgd(params, lr: float = 0.1, momentum: float = 0.0, nesterov: bool = False,
        weight_decay: float = 0.0, foreach: bool = True) -> torch.optim.SGD:
    """Stochastic gradient descent with optional (Nesterov) momentum."""
    return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=nesterov,
                           weight_decay=weight_decay, foreach=foreach)
