"""Signum (Bernstein et al. 2018, "signSGD: compressed optimisation for non-convex problems").

    m_t      = beta m_{t-1} + (1 - beta) g_t
    theta   <- theta (1 - lr * wd)              (decoupled weight decay)
    theta   <- theta - lr * sign(m_t)
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.optim import Optimizer

from overtone_focus.checks import check_beta, check_lr, check_nonnegative


class Signum(Optimizer):
    """Signum; defaults lr 1e-3, momentum 0.9, weight_decay 0."""

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.9, weight_decay: float = 0.0,
                 foreach: bool | None = None) -> None:
        check_lr(lr)
        check_beta("momentum", momentum)
        check_nonnegative("weight_decay", weight_decay)
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay, foreach=foreach))

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None):
        """One Signum update; returns ``closure()`` if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            ms = []
            for p in params:
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                ms.append(state["momentum_buffer"])
            lr, beta, wd = group["lr"], group["momentum"], group["weight_decay"]
            foreach = group["foreach"]
            if foreach is None:
                foreach = all(p.device.type in ("cpu", "cuda") for p in params)
            if foreach:
                torch._foreach_lerp_(ms, grads, 1.0 - beta)
                if wd:
                    torch._foreach_mul_(params, 1.0 - lr * wd)
                torch._foreach_add_(params, torch._foreach_sign(ms), alpha=-lr)
            else:
                for p, g, m in zip(params, grads, ms):
                    m.lerp_(g, 1.0 - beta)
                    if wd:
                        p.mul_(1.0 - lr * wd)
                    p.add_(torch.sign(m), alpha=-lr)
        return loss
