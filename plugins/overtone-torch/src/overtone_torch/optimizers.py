"""torch's own optimizers behind overtone's factory contract ``factory(params, **hparams)``.

Each uses torch's fused kernel where it applies (``fused = None``: when every parameter is a
floating-point CUDA tensor) and the multi-tensor ``foreach`` path otherwise. Invalid
hyper-parameters raise :class:`overtone.ConfigError` naming the ``[optimizer]`` key.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from overtone import ConfigError


def _betas(betas: Sequence[float]) -> tuple[float, float]:
    """``betas`` as a float pair (torch wants a tuple).

    Count, element type and ``0 <= beta < 1`` are the declared ``Param``'s, checked before the
    factory runs; called directly, torch's own check refuses a rate outside ``[0, 1)``.
    """
    beta1, beta2 = betas
    return float(beta1), float(beta2)


def _tensors(params: Iterable[Any]) -> tuple[list[Any], list[torch.Tensor]]:
    """The params (tensors or param-group dicts) as a list, and every tensor in them."""
    params = list(params)
    tensors: list[torch.Tensor] = []
    for p in params:
        tensors.extend(p["params"] if isinstance(p, dict) else [p])
    return params, tensors


def _paths(tensors: list[torch.Tensor], fused: bool | None, foreach: bool) -> dict[str, bool]:
    """``{"fused": True}`` or ``{"foreach": foreach}`` (torch rejects both); auto-fused on CUDA."""
    if fused is None:
        fused = bool(tensors) and all(t.is_cuda and t.is_floating_point() for t in tensors)
    return {"fused": True} if fused else {"foreach": foreach}


def _build(cls: type[torch.optim.Optimizer], params: Iterable[Any], fused: bool | None, foreach: bool,
           **hparams: Any) -> torch.optim.Optimizer:
    params, tensors = _tensors(params)
    try:
        return cls(params, **hparams, **_paths(tensors, fused, foreach))
    except ValueError as exc:  # torch's own checks: "Invalid learning rate: -1.0", ...
        raise ConfigError(f"[optimizer] {cls.__name__}: {exc}") from exc
    except RuntimeError as exc:
        if fused:
            raise ConfigError(f"[optimizer] fused = true is not supported here ({exc}); leave fused out") from exc
        raise


def adamw(params: Iterable[Any], lr: float = 1e-3, betas: Sequence[float] = (0.9, 0.999), eps: float = 1e-8,
          weight_decay: float = 0.01, amsgrad: bool = False, foreach: bool = True,
          fused: bool | None = None) -> torch.optim.AdamW:
    """AdamW (Loshchilov & Hutter 2019): Adam with decoupled weight decay ``p <- p - lr * wd * p``."""
    return _build(torch.optim.AdamW, params, fused, foreach, lr=lr, betas=_betas(betas), eps=eps,
                  weight_decay=weight_decay, amsgrad=amsgrad)


def adam(params: Iterable[Any], lr: float = 1e-3, betas: Sequence[float] = (0.9, 0.999), eps: float = 1e-8,
         weight_decay: float = 0.0, amsgrad: bool = False, foreach: bool = True,
         fused: bool | None = None) -> torch.optim.Adam:
    """Adam (Kingma & Ba 2015); weight decay is L2 (``wd * p`` added to the gradient)."""
    return _build(torch.optim.Adam, params, fused, foreach, lr=lr, betas=_betas(betas), eps=eps,
                  weight_decay=weight_decay, amsgrad=amsgrad)


def sgd(params: Iterable[Any], lr: float = 0.1, momentum: float = 0.0, dampening: float = 0.0,
        nesterov: bool = False, weight_decay: float = 0.0, foreach: bool = True,
        fused: bool | None = None) -> torch.optim.SGD:
    """SGD with optional (Nesterov) momentum: ``v <- mu v + (1 - dampening) g``, ``p <- p - lr v``."""
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ConfigError("[optimizer] nesterov = true needs momentum > 0 and dampening = 0")
    return _build(torch.optim.SGD, params, fused, foreach, lr=lr, momentum=momentum, dampening=dampening,
                  nesterov=nesterov, weight_decay=weight_decay)
