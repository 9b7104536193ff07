"""FOCUS: First Order Concentrated Updating Scheme (Liu et al. 2025, arXiv 2501.12243).

Algorithm 1 of the paper, element-wise, with ``m_0 = 0`` and ``theta_bar_0 = 0``:

    m_t         = beta1 m_{t-1} + (1 - beta1) g_t
    theta_bar_t = beta2 theta_bar_{t-1} + (1 - beta2) theta_t
    theta_hat_t = theta_bar_t / (1 - beta2^t)
    theta_t    <- theta_t - lr * wd * theta_hat_t                      (weight decay)
    theta_{t+1} = theta_t - lr * (sign(m_t) + gamma * sign(theta_t - theta_hat_t))

``decay_order = "reference"`` applies the weight-decay line after the sign step, as the
authors' public code does; the two agree when ``weight_decay = 0``.

Numerics. ``sign(theta - theta_hat)`` is computed as ``sign(c theta - theta_bar)`` with
``c = 1 - beta2^t > 0`` (the same sign, without a ``theta_hat`` tensor); at ``t = 1``, where
``theta_hat = theta`` exactly, this gives 0 in floating point too. The parameter average is kept in
float32 or wider (in bf16 with beta2 = 0.999 it would stall). The foreach and single-tensor paths
run the same operations in the same order and agree bit for bit.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import torch
from torch.optim import Optimizer

from overtone_focus.blocks import block_size_for, blocks, bucket_key
from overtone_focus.checks import check_betas, check_choice, check_lr, check_nonnegative
from overtone_focus.fused import (
    apply,
    check_options,
    device_hp,
    fused_ready,
    load_keeping_paths,
)


class FOCUS(Optimizer):
    """FOCUS (arXiv 2501.12243, Algorithm 1): Signum plus an attraction toward the parameters' average.

    ``theta <- theta - lr (sign(m) + gamma sign(theta - theta_hat))``, ``m`` the gradients' and
    ``theta_hat`` the parameters' bias-corrected exponential moving averages (rates ``betas``).
    Defaults as the paper and its reference code: lr 0.01, betas (0.9, 0.999), gamma 0.1,
    weight_decay 0. Weight decay is decoupled and uses ``theta_hat``: ``theta -= lr wd theta_hat``,
    before the sign step (``decay_order="paper"``) or after it (``"reference"``, the public code).
    ``foreach=None`` picks the multi-tensor path for CPU and CUDA tensors.
    """

    def __init__(self, params, lr: float = 0.01, betas: Sequence[float] = (0.9, 0.999), gamma: float = 0.1,
                 weight_decay: float = 0.0, decay_order: str = "paper", foreach: bool | None = None,
                 fused: bool | None = None, capturable: bool = False) -> None:
        check_lr("FOCUS", lr)
        betas = check_betas("FOCUS", betas)
        check_nonnegative("FOCUS", "gamma", gamma)
        check_nonnegative("FOCUS", "weight_decay", weight_decay)
        check_choice("FOCUS", "decay_order", decay_order, ("paper", "reference"))
        super().__init__(params, dict(lr=lr, betas=betas, gamma=gamma, weight_decay=weight_decay,
                                      decay_order=decay_order, foreach=foreach, fused=fused,
                                      capturable=capturable))
        check_options("FOCUS", self.param_groups, fused, foreach, capturable)
        self._fused_off: dict[str, str] = {}  # device type -> why the fused path is not used there

    def load_state_dict(self, state_dict: dict) -> None:
        """torch's ``load_state_dict``, keeping the parameter average at float32 or wider.

        torch casts every floating state tensor to its parameter's dtype; for bf16/fp16
        parameters that would round ``param_avg`` to 8-11 bits and stall it (see module notes).
        This optimizer's own ``foreach``/``fused``/``capturable`` are kept (torch would take the
        saved ones), so a state saved by either path loads into the other.
        """
        saved = {k: v["param_avg"] for k, v in state_dict["state"].items() if "param_avg" in v}
        load_keeping_paths(super().load_state_dict, self, state_dict)
        ids = [i for g in state_dict["param_groups"] for i in g["params"]]
        params = [p for g in self.param_groups for p in g["params"]]
        for i, p in zip(ids, params):
            if i in saved:
                wide = torch.promote_types(p.dtype, torch.float32)
                self.state[p]["param_avg"] = saved[i].to(device=p.device, dtype=wide, copy=True)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None):
        """One FOCUS update of every parameter with a gradient; returns ``closure()`` if given.

        Each parameter keeps its own step count ``t`` (a parameter that first gets a gradient
        late starts its averages then, with its own bias correction).
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            capturable = bool(group.get("capturable"))
            buckets: dict[tuple, tuple[list, list, list, list]] = {}
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("FOCUS does not support sparse gradients")
                state = self.state[p]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float32, device=p.device) if capturable else 0
                    wide = torch.promote_types(p.dtype, torch.float32)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["param_avg"] = torch.zeros_like(p, dtype=wide, memory_format=torch.preserve_format)
                if capturable:
                    state["step"].add_(1)
                    key = (state["step"], p.device, p.dtype)  # one bucket per parameter (its own t)
                else:
                    state["step"] += 1
                    key = bucket_key(p, state["step"])
                bucket = buckets.setdefault(key, ([], [], [], []))
                for out, tensor in zip(bucket, (p, p.grad, state["exp_avg"], state["param_avg"])):
                    out.append(tensor)
            foreach = group["foreach"]
            hp = dict(lr=group["lr"], beta1=group["betas"][0], beta2=group["betas"][1], gamma=group["gamma"],
                      weight_decay=group["weight_decay"], decay_first=group["decay_order"] == "paper")
            for (step, device, _), (params, grads, ms, bars) in buckets.items():
                if group.get("fused") and self._fused_ready(device.type):
                    left, cause = apply("focus", (params, grads, ms, bars), _focus_hp(step, bars[0], **hp))
                    if not left:
                        continue
                    self._fused_off[device.type] = cause
                    warnings.warn(f"FOCUS(fused=True): the fused step failed ({cause}); running the "
                                  "foreach path", RuntimeWarning, stacklevel=3)
                    params, grads, ms, bars = (list(t) for t in zip(*left))
                step = int(step.item()) if isinstance(step, torch.Tensor) else step
                fast = (foreach if foreach is not None else device.type in ("cpu", "cuda")) or group.get("fused")
                if fast and all(b.dtype == p.dtype for b, p in zip(bars, params)):
                    for block in blocks((params, grads, ms, bars), block_size_for(device)):
                        _multi_tensor(*block, step=step, **hp)
                else:
                    _single_tensor(params, grads, ms, bars, step=step, **hp)
        return loss

    def _fused_ready(self, device_type: str) -> bool:
        """Whether the fused path runs on ``device_type``; says once (a warning) why not."""
        return fused_ready("FOCUS", self._fused_off, device_type)


def _focus_hp(step: int | torch.Tensor, like: torch.Tensor, *, lr, beta1, beta2, gamma, weight_decay,
              decay_first) -> torch.Tensor:
    """The kernel's ``hp`` (see :func:`overtone_focus.fused.focus_kernel`) in ``like``'s dtype and device.

    ``c = 1 - beta2^t`` and ``-lr wd / c`` are computed in float64 and rounded once, as the
    foreach path's scalars are; with ``step`` a device tensor (capturable), on the device.
    """
    if isinstance(step, torch.Tensor):
        c = 1.0 - torch.pow(beta2, step.to(torch.float64))
    else:
        c = 1.0 - beta2**step
    decay = -lr * weight_decay / c
    values = [1.0 - beta1, 1.0 - beta2, c, gamma, -lr, decay if decay_first else 0.0,
              0.0 if decay_first else decay]
    if isinstance(step, torch.Tensor):
        return device_hp(values, like)
    return torch.tensor(values, dtype=like.dtype).to(like.device, non_blocking=True)


def _single_tensor(params, grads, ms, bars, *, step, lr, beta1, beta2, gamma, weight_decay, decay_first):
    """One parameter at a time; parameters narrower than float32 keep a float32 average."""
    c = 1.0 - beta2**step
    for p, g, m, bar in zip(params, grads, ms, bars):
        m.lerp_(g, 1.0 - beta1)
        bar.lerp_(p.to(bar.dtype), 1.0 - beta2)
        if weight_decay and decay_first:
            p.add_(bar.to(p.dtype), alpha=-lr * weight_decay / c)
        pull = p.to(bar.dtype).mul(c).sub_(bar).sign_()
        update = torch.sign(m).add_(pull.to(p.dtype), alpha=gamma)
        p.add_(update, alpha=-lr)
        if weight_decay and not decay_first:
            p.add_(bar.to(p.dtype), alpha=-lr * weight_decay / c)


def _multi_tensor(params, grads, ms, bars, *, step, lr, beta1, beta2, gamma, weight_decay, decay_first):
    """The same operations as :func:`_single_tensor`, as ``torch._foreach_*`` calls on lists."""
    c = 1.0 - beta2**step
    torch._foreach_lerp_(ms, grads, 1.0 - beta1)
    torch._foreach_lerp_(bars, params, 1.0 - beta2)
    if weight_decay and decay_first:
        torch._foreach_add_(params, bars, alpha=-lr * weight_decay / c)
    pulls = torch._foreach_mul(params, c)
    torch._foreach_sub_(pulls, bars)
    torch._foreach_sign_(pulls)
    updates = torch._foreach_sign(ms)
    torch._foreach_add_(updates, pulls, alpha=gamma)
    torch._foreach_add_(params, updates, alpha=-lr)
    if weight_decay and not decay_first:
        torch._foreach_add_(params, bars, alpha=-lr * weight_decay / c)
