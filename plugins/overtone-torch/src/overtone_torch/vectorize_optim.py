"""Optimizers over stacked parameters: every member of a pack steps at once, with its own values.

Each parameter tensor has a leading member dim ``M``; each hyper-parameter is a tensor of
shape ``(M,)`` broadcast over the other dims, so no Python loop runs over the members.
The updates are those of torch's AdamW, Adam and SGD (foreach path), element for element:

- AdamW (Loshchilov & Hutter 2019): ``p <- p (1 - lr wd)``; ``m <- m + (1 - b1)(g - m)``;
  ``v <- b2 v + (1 - b2) g^2``; ``p <- p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)``.
- Adam (Kingma & Ba 2015): as AdamW, the decay as L2: ``g <- g + wd p`` and no ``p (1 - lr wd)``.
- SGD: ``g <- g + wd p``; with momentum ``mu``: ``b <- g`` at the first step, then
  ``b <- mu b + (1 - dampening) g``; ``g <- g + mu b`` (Nesterov) or ``g <- b``; ``p <- p - lr g``.

and those of overtone-focus (``overtone_focus.focus`` and ``.signum``, foreach path):

- FOCUS (arXiv 2501.12243, Algorithm 1): ``m <- m + (1 - b1)(g - m)``; ``a <- a + (1 - b2)(p - a)``;
  ``c = 1 - b2^t``; ``p <- p - lr wd a / c`` (before the sign step for ``decay_order = "paper"``,
  after it for ``"reference"``); ``p <- p - lr (sign(m) + gamma sign(c p - a))``.
- Signum (Bernstein et al. 2018): ``m <- m + (1 - mu)(g - m)``; ``p <- p (1 - lr wd) - lr sign(m)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

#: The optimizers a pack can train with, and their keys that may differ between members.
PER_MEMBER = {
    "adamw": ("lr", "betas", "eps", "weight_decay"),
    "adam": ("lr", "betas", "eps", "weight_decay"),
    "sgd": ("lr", "momentum", "dampening", "weight_decay"),
    "focus": ("lr", "betas", "gamma", "weight_decay"),
    "signum": ("lr", "momentum", "weight_decay"),
}
#: Keys that only choose a kernel path; they change no value.
PATH_KEYS = ("foreach", "fused", "capturable")


def _member_tensor(values: Sequence[float], like: torch.Tensor) -> torch.Tensor:
    """``values`` as a float64 tensor of shape ``(M,)`` on ``like``'s device."""
    return torch.tensor([float(v) for v in values], dtype=torch.float64, device=like.device)


def _over(values: torch.Tensor, param: torch.Tensor) -> torch.Tensor:
    """``(M,)`` values shaped ``(M, 1, ..., 1)`` in ``param``'s dtype, to broadcast over it."""
    return values.to(param.dtype).reshape(-1, *([1] * (param.ndim - 1)))


class PackOptimizer:
    """One optimizer for every member's stacked parameters, hyper-parameters per member.

    ``params``: name -> stacked leaf tensor ``(M, ...)``; ``hparams``: each member's resolved
    ``[optimizer]`` section; ``decays``: name -> whether weight decay applies to it (the
    engine's ``decay`` groups: :func:`overtone_torch.build.exempt_from_decay`).
    """

    def __init__(self, name: str, params: Mapping[str, torch.Tensor], hparams: Sequence[Mapping[str, Any]],
                 decays: Mapping[str, bool]) -> None:
        self.name, self.params = name, dict(params)
        like = next(iter(self.params.values()))
        self.lr = _member_tensor([h["lr"] for h in hparams], like)
        self.weight_decay = {n: _member_tensor([h["weight_decay"] if decays[n] else 0.0 for h in hparams], like)
                             for n in self.params}
        if name in ("adamw", "adam", "focus"):
            self.beta1 = _member_tensor([h["betas"][0] for h in hparams], like)
            self.beta2 = _member_tensor([h["betas"][1] for h in hparams], like)
        if name in ("adamw", "adam"):
            self.eps = _member_tensor([h["eps"] for h in hparams], like)
        elif name == "focus":
            self.gamma = _member_tensor([h["gamma"] for h in hparams], like)
            self.decay_first = hparams[0].get("decay_order", "paper") == "paper"
        elif name == "signum":
            self.momentum = _member_tensor([h["momentum"] for h in hparams], like)
        else:
            self.momentum = _member_tensor([h["momentum"] for h in hparams], like)
            # a member without momentum steps along g itself, whatever its dampening says
            self.dampening = torch.where(self.momentum == 0, 0.0,
                                         _member_tensor([h["dampening"] for h in hparams], like))
            self.nesterov = bool(hparams[0].get("nesterov", False))
        self.state: dict[str, dict[str, torch.Tensor]] = {}
        self.scratch: dict[str, torch.Tensor] = {}  # one work tensor per parameter, reused at every step
        self.steps = 0
        self.frozen = torch.zeros(len(hparams), dtype=torch.bool, device=like.device)

    @torch.no_grad()
    def step(self, lr_factor: float = 1.0) -> None:
        """One update of every member, at learning rate ``lr * lr_factor`` (the schedule's factor)."""
        self.steps += 1
        lr = self.lr * lr_factor
        frozen = bool(self.frozen.any())
        for name, p in self.params.items():
            if p.grad is None:
                continue
            if frozen:  # a stopped member's NaN must not reach its (unused) state
                p.grad.masked_fill_(_over(self.frozen.double(), p).bool(), 0.0)
            {"sgd": self._sgd, "focus": self._focus, "signum": self._signum}.get(self.name, self._adam)(
                name, p, p.grad, lr)

    def stop(self, member: int) -> None:
        """Stop ``member``: from now on its learning rate is 0 and its gradients are zeroed. Its
        parameters (NaN or not) are read by no other member."""
        self.frozen[member] = True
        self.lr[member] = 0.0

    def member_state(self, member: int) -> dict[str, Any]:
        """``member``'s slice of the optimizer state (moments, buffers) and the step count."""
        return {"steps": self.steps, "state": {name: {k: v[member].clone() for k, v in state.items()}
                                               for name, state in self.state.items()}}

    def load_member_states(self, states: Sequence[Mapping[str, Any]]) -> None:
        """Stack the members' :meth:`member_state` slices back (a resumed pack)."""
        self.steps = int(states[0]["steps"])
        like = next(iter(self.params.values()))
        self.state = {name: {k: torch.stack([s["state"][name][k] for s in states]).to(like.device)
                             for k in saved} for name, saved in states[0]["state"].items()}

    def zero_grad(self) -> None:
        """Drop every gradient (``set_to_none``)."""
        for p in self.params.values():
            p.grad = None

    def _adam(self, name: str, p: torch.Tensor, grad: torch.Tensor, lr: torch.Tensor) -> None:
        if name not in self.state:  # (a setdefault would allocate the zeros at every step)
            self.state[name] = {"exp_avg": torch.zeros_like(p), "exp_avg_sq": torch.zeros_like(p)}
        state = self.state[name]
        wd = self.weight_decay[name]
        if self.name == "adamw":
            p.mul_(_over(1 - lr * wd, p))
        else:
            grad = grad + _over(wd, p) * p
        m, v = state["exp_avg"], state["exp_avg_sq"]
        work = self.scratch.get(name)
        if work is None or work.shape != p.shape:
            work = self.scratch[name] = torch.empty_like(p)
        m.lerp_(grad, _over(1 - self.beta1, p))
        v.mul_(_over(self.beta2, p)).addcmul_(grad, torch.mul(grad, _over(1 - self.beta2, p), out=work))
        step_size = lr / (1 - self.beta1 ** self.steps)
        bias2_sqrt = (1 - self.beta2 ** self.steps).sqrt()
        denom = torch.sqrt(v, out=work).div_(_over(bias2_sqrt, p)).add_(_over(self.eps, p))
        p.add_(torch.div(m, denom, out=work).mul_(_over(-step_size, p)))  # torch: p.addcdiv_(m, denom, -step)

    def _sgd(self, name: str, p: torch.Tensor, grad: torch.Tensor, lr: torch.Tensor) -> None:
        grad = grad + _over(self.weight_decay[name], p) * p
        if bool((self.momentum != 0).any()):
            if name not in self.state:
                buf = grad.clone()
                self.state[name] = {"momentum_buffer": buf}
            else:
                buf = self.state[name]["momentum_buffer"]
                buf.mul_(_over(self.momentum, p)).add_(grad * _over(1 - self.dampening, p))
            moving = _over((self.momentum != 0).to(torch.float64), p).bool()
            step = grad + _over(self.momentum, p) * buf if self.nesterov else buf
            grad = torch.where(moving, step, grad)
        p.sub_(_over(lr, p) * grad)

    def _focus(self, name: str, p: torch.Tensor, grad: torch.Tensor, lr: torch.Tensor) -> None:
        wide = torch.promote_types(p.dtype, torch.float32)
        if name not in self.state:
            self.state[name] = {"exp_avg": torch.zeros_like(p), "param_avg": torch.zeros_like(p, dtype=wide)}
        state = self.state[name]
        m, bar = state["exp_avg"], state["param_avg"]
        c = 1 - self.beta2 ** self.steps
        m.lerp_(grad, _over(1 - self.beta1, p))
        bar.lerp_(p.to(wide), _over(1 - self.beta2, bar))
        decay = _over(-lr * self.weight_decay[name] / c, p)
        if self.decay_first:
            p.add_(bar.to(p.dtype) * decay)
        pull = (p.to(wide) * _over(c, bar)).sub_(bar).sign_()
        update = torch.sign(m).add_(pull.to(p.dtype) * _over(self.gamma, p))
        p.add_(update * _over(-lr, p))
        if not self.decay_first:
            p.add_(bar.to(p.dtype) * decay)

    def _signum(self, name: str, p: torch.Tensor, grad: torch.Tensor, lr: torch.Tensor) -> None:
        if name not in self.state:
            self.state[name] = {"momentum_buffer": torch.zeros_like(p)}
        m = self.state[name]["momentum_buffer"]
        m.lerp_(grad, _over(1 - self.momentum, p))
        p.mul_(_over(1 - lr * self.weight_decay[name], p))
        p.add_(torch.sign(m) * _over(-lr, p))
