"""FOCUS: First Order Concentrated Updating Scheme (Liu et al. 2025, arXiv 2501.12243).

Algorithm 1 of the paper, element-wise, with ``m_0 = 0`` and ``theta_bar_0 = 0``:

    m_t         = beta1 m_{t-1} + (1 - beta1) g_t
    theta_bar_t = beta2 theta_bar_{t-1} + (1 - beta2) theta_t
    theta_hat_t = theta_bar_t / (1 - beta2^t)
    theta_t    <- theta_t - lr * wd * theta_hat_t                      (weight decay)
    theta_{t+1} = theta_t - lr * (sign(m_t) + gamma * sign(theta_t - theta_hat_t))

``decay_order = "reference"`` applies the weight-decay line after the sign step, as the
authors' public code does; the two agree when ``weight_decay = 0``. The parameter average is
kept in float32 or wider (in bf16 with beta2 = 0.999 it would stall). The moving averages are
computed as ``lerp`` (``m + (1 - beta)(g - m)``, the same quantity in one pass), and the pull
``sign(theta - theta_hat)`` as ``sign(theta (1 - beta2^t) - theta_bar)``, which needs no
``theta_hat`` tensor. The foreach and
single-tensor paths run the same operations in the same order and agree bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch.optim import Optimizer

from overtone_focus.checks import check_betas, check_lr, check_nonnegative


class FOCUS(Optimizer):
    """FOCUS; defaults lr 0.01, betas (0.9, 0.999), gamma 0.1, weight_decay 0 (the paper's)."""

    def __init__(self, params, lr: float = 0.01, betas: Sequence[float] = (0.9, 0.999), gamma: float = 0.1,
                 weight_decay: float = 0.0, decay_order: str = "paper", foreach: bool | None = None) -> None:
        from overtone import ConfigError

        check_lr(lr)
        betas = check_betas(betas)
        check_nonnegative("gamma", gamma)
        check_nonnegative("weight_decay", weight_decay)
        if decay_order not in ("paper", "reference"):
            raise ConfigError(f"decay_order = {decay_order!r}; allowed: 'paper', 'reference'")
        super().__init__(params, dict(lr=lr, betas=betas, gamma=gamma, weight_decay=weight_decay,
                                      decay_order=decay_order, foreach=foreach))

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None):
        """One FOCUS update of every parameter with a gradient; returns ``closure()`` if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params, grads, ms, bars = [], [], [], []
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("FOCUS does not support sparse gradients")
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    wide = torch.promote_types(p.dtype, torch.float32)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["param_avg"] = torch.zeros_like(p, dtype=wide, memory_format=torch.preserve_format)
                state["step"] += 1
                params.append(p)
                grads.append(p.grad)
                ms.append(state["exp_avg"])
                bars.append(state["param_avg"])
            if not params:
                continue
            step = self.state[params[0]]["step"]
            foreach = group["foreach"]
            if foreach is None:
                foreach = all(p.device.type in ("cpu", "cuda") for p in params)
            same_dtype = all(b.dtype == p.dtype for b, p in zip(bars, params))
            run = _multi_tensor if foreach and same_dtype else _single_tensor
            run(params, grads, ms, bars, step=step, lr=group["lr"], beta1=group["betas"][0],
                beta2=group["betas"][1], gamma=group["gamma"], weight_decay=group["weight_decay"],
                decay_first=group["decay_order"] == "paper")
        return loss


def _single_tensor(params, grads, ms, bars, *, step, lr, beta1, beta2, gamma, weight_decay, decay_first):
    # sign(theta - theta_bar / c) = sign(theta * c - theta_bar) for c = 1 - beta2^t > 0: no theta_hat tensor
    correction = 1.0 - beta2**step
    for p, g, m, bar in zip(params, grads, ms, bars):
        m.lerp_(g, 1.0 - beta1)
        bar.lerp_(p.to(bar.dtype), 1.0 - beta2)
        if weight_decay and decay_first:
            p.add_(bar.to(p.dtype), alpha=-lr * weight_decay / correction)
        pull = p.to(bar.dtype).mul(correction).sub_(bar).sign_()
        update = torch.sign(m).add_(pull.to(p.dtype), alpha=gamma)
        p.add_(update, alpha=-lr)
        if weight_decay and not decay_first:
            p.add_(bar.to(p.dtype), alpha=-lr * weight_decay / correction)


def _multi_tensor(params, grads, ms, bars, *, step, lr, beta1, beta2, gamma, weight_decay, decay_first):
    correction = 1.0 - beta2**step
    torch._foreach_lerp_(ms, grads, 1.0 - beta1)
    torch._foreach_lerp_(bars, params, 1.0 - beta2)
    if weight_decay and decay_first:
        torch._foreach_add_(params, bars, alpha=-lr * weight_decay / correction)
    pulls = torch._foreach_mul(params, correction)
    torch._foreach_sub_(pulls, bars)
    torch._foreach_sign_(pulls)
    updates = torch._foreach_sign(ms)
    torch._foreach_add_(updates, pulls, alpha=gamma)
    torch._foreach_add_(params, updates, alpha=-lr)
    if weight_decay and not decay_first:
        torch._foreach_add_(params, bars, alpha=-lr * weight_decay / correction)
