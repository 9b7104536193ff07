"""Signum (Bernstein et al. 2018, "signSGD: compressed optimisation for non-convex problems").

    m_t      = beta m_{t-1} + (1 - beta) g_t
    theta   <- theta (1 - lr * wd)              (decoupled weight decay)
    theta   <- theta - lr * sign(m_t)

This is FOCUS (arXiv 2501.12243) with ``gamma = 0``, the baseline the FOCUS paper compares with.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.optim import Optimizer

from overtone_focus.blocks import block_size_for, blocks, bucket_key
from overtone_focus.checks import check_beta, check_lr, check_nonnegative


class Signum(Optimizer):
    """Signum: ``theta <- theta (1 - lr wd) - lr sign(m)``, ``m`` the gradients' moving average.

    Defaults lr 1e-3, momentum 0.9, weight_decay 0. ``foreach=None`` picks the multi-tensor path
    for CPU and CUDA tensors; it and the single-tensor path agree bit for bit.
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.9, weight_decay: float = 0.0,
                 foreach: bool | None = None) -> None:
        check_lr("Signum", lr)
        check_beta("Signum", "momentum", momentum)
        check_nonnegative("Signum", "weight_decay", weight_decay)
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay, foreach=foreach))

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None):
        """One Signum update of every parameter with a gradient; returns ``closure()`` if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            buckets: dict[tuple, tuple[list, list, list]] = {}
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("Signum does not support sparse gradients")
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                bucket = buckets.setdefault(bucket_key(p, 0), ([], [], []))
                for out, tensor in zip(bucket, (p, p.grad, state["momentum_buffer"])):
                    out.append(tensor)
            lr, beta, wd, foreach = group["lr"], group["momentum"], group["weight_decay"], group["foreach"]
            for (_, device, _), (params, grads, ms) in buckets.items():
                if foreach if foreach is not None else device.type in ("cpu", "cuda"):
                    for ps, gs, bs in blocks((params, grads, ms), block_size_for(device)):
                        torch._foreach_lerp_(bs, gs, 1.0 - beta)
                        if wd:
                            torch._foreach_mul_(ps, 1.0 - lr * wd)
                        torch._foreach_add_(ps, torch._foreach_sign(bs), alpha=-lr)
                else:
                    for p, g, m in zip(params, grads, ms):
                        m.lerp_(g, 1.0 - beta)
                        if wd:
                            p.mul_(1.0 - lr * wd)
                        p.add_(torch.sign(m), alpha=-lr)
        return loss
