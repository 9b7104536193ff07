"""Signum (Bernstein et al. 2018, "signSGD: compressed optimisation for non-convex problems").

    m_t      = beta m_{t-1} + (1 - beta) g_t
    theta   <- theta (1 - lr * wd)              (decoupled weight decay)
    theta   <- theta - lr * sign(m_t)

The baseline the FOCUS paper (arXiv 2501.12243) compares with. It is FOCUS with ``gamma = 0`` and
``beta2 = 0`` for any weight decay, and FOCUS with ``gamma = 0`` and any ``beta2`` only when
``weight_decay = 0`` (FOCUS decays with the averaged parameters ``theta_hat``, Signum with ``theta``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch.optim import Optimizer

from overtone_focus.blocks import block_size_for, blocks, bucket_key
from overtone_focus.checks import check_beta, check_lr, check_nonnegative
from overtone_focus.fused import (
    apply,
    check_options,
    device_hp,
    fused_ready,
    load_keeping_paths,
)


class Signum(Optimizer):
    """Signum: ``theta <- theta (1 - lr wd) - lr sign(m)``, ``m`` the gradients' moving average.

    Defaults lr 1e-3, momentum 0.9, weight_decay 0. ``foreach=None`` picks the multi-tensor path
    for CPU and CUDA tensors; it and the single-tensor path agree bit for bit. ``fused=True``
    runs one compiled kernel pass per parameter (see :mod:`overtone_focus.fused`);
    ``capturable=True`` (CUDA, with ``fused``) keeps the step count on the device.

    Relation to FOCUS: Signum(lr, momentum=beta, weight_decay=wd) is
    FOCUS(lr, betas=(beta, 0), gamma=0, weight_decay=wd): with ``beta2 = 0`` the average
    ``theta_hat`` is ``theta`` itself, so FOCUS's decay ``theta -= lr wd theta_hat`` is Signum's
    ``theta *= 1 - lr wd``. With ``gamma = 0`` and any other ``beta2`` the two are equal only when
    ``weight_decay = 0``: FOCUS then decays with the averaged parameters, Signum with the current.
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.9, weight_decay: float = 0.0,
                 foreach: bool | None = None, fused: bool | None = None, capturable: bool = False) -> None:
        check_lr("Signum", lr)
        check_beta("Signum", "momentum", momentum)
        check_nonnegative("Signum", "weight_decay", weight_decay)
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay, foreach=foreach,
                                      fused=fused, capturable=capturable))
        check_options("Signum", self.param_groups, fused, foreach, capturable)
        self._fused_off: dict[str, str] = {}  # device type -> why the fused path is not used there

    def load_state_dict(self, state_dict: dict) -> None:
        """torch's ``load_state_dict``, keeping this optimizer's ``foreach``/``fused``/``capturable``."""
        load_keeping_paths(super().load_state_dict, self, state_dict)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None):
        """One Signum update of every parameter with a gradient; returns ``closure()`` if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            capturable = bool(group.get("capturable"))
            buckets: dict[tuple, tuple[list, list, list]] = {}
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("Signum does not support sparse gradients")
                state = self.state[p]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float32, device=p.device) if capturable else 0
                    state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                if capturable:
                    state["step"].add_(1)
                else:
                    state["step"] += 1
                bucket = buckets.setdefault(bucket_key(p, 0), ([], [], []))
                for out, tensor in zip(bucket, (p, p.grad, state["momentum_buffer"])):
                    out.append(tensor)
            lr, beta, wd, foreach = group["lr"], group["momentum"], group["weight_decay"], group["foreach"]
            for (_, device, dtype), (params, grads, ms) in buckets.items():
                if group.get("fused") and self._fused_ready(device.type):
                    hp_values = [1.0 - beta, 1.0 - lr * wd, -lr]
                    wide = torch.promote_types(dtype, torch.float32)
                    if capturable:
                        hp = device_hp(hp_values, torch.empty((), dtype=wide, device=device))
                    else:
                        hp = torch.tensor(hp_values, dtype=wide).to(device, non_blocking=True)
                    left, cause = apply("signum", (params, grads, ms), hp)
                    if not left:
                        continue
                    self._fused_off[device.type] = cause
                    warnings.warn(f"Signum(fused=True): the fused step failed ({cause}); running the "
                                  "foreach path", RuntimeWarning, stacklevel=3)
                    params, grads, ms = (list(t) for t in zip(*left))
                if group.get("fused") or (foreach if foreach is not None else device.type in ("cpu", "cuda")):
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

    def _fused_ready(self, device_type: str) -> bool:
        """Whether the fused path runs on ``device_type``; says once (a warning) why not."""
        return fused_ready("Signum", self._fused_off, device_type)
