"""Model ``modular-mlp``: one small MLP per task, routed by the task bits (needs torch).

The modular network of the Domino model's modularity result (Liu et al., arXiv 2501.12391):
instead of one MLP whose parameters every skill shares, ``modules`` independent MLPs of
``width`` units each. Module k reads the whole input vector ``x``; its last hidden layer
``h_k(x)`` is multiplied by the gate ``x[:, k]`` (in ``multitask-sparse-parity`` the first
``n_tasks`` inputs are the one-hot task bits, so only the task's own module is active), and the
features are the concatenation ``[x_1 h_1, ..., x_m h_m]`` of width ``modules * width``. The
loss head is linear in the features, so each module also has its own block of head weights and
a module's parameters receive gradient only from its own task's examples. Weights start as
``N(0, init_scale^2 / fan_in)`` and biases at 0, as overtone-torch's ``mlp``.
"""

from __future__ import annotations

from typing import Any

import torch
from overtone import ConfigError
from torch import nn

ACTIVATIONS = {"relu": torch.relu, "gelu": nn.functional.gelu, "silu": nn.functional.silu,
               "tanh": torch.tanh}


class ModularMLP(nn.Module):
    """``modules`` gated MLPs of ``depth`` hidden layers of ``width`` units (module docstring)."""

    def __init__(self, *, input_spec: dict[str, Any], d_out: int | None = None, modules: int = 2,
                 width: int = 64, depth: int = 2, activation: str = "relu",
                 init_scale: float = 1.0) -> None:
        super().__init__()
        if input_spec.get("kind") != "vector" or input_spec.get("output", "pooled") != "pooled":
            raise ConfigError(f"[model] modular-mlp takes vector inputs with pooled output, got "
                              f"kind = {input_spec.get('kind')!r}; use name = 'mlp'")
        dim = input_spec.get("dim")
        if not isinstance(dim, int) or not 1 <= modules <= dim:
            raise ConfigError(f"[model] modular-mlp: modules = {modules} must lie in 1..{dim} "
                              f"(the first `modules` inputs are the task bits that gate them)")
        if depth < 1 or width < 1:
            raise ConfigError(f"[model] modular-mlp needs depth >= 1 and width >= 1 "
                              f"(got depth = {depth}, width = {width})")
        if activation not in ACTIVATIONS:
            raise ConfigError(f"[model] activation = {activation!r}; allowed: {', '.join(ACTIVATIONS)}")
        if init_scale <= 0:
            raise ConfigError(f"[model] init_scale = {init_scale} must be positive")
        if d_out is not None and d_out != modules * width:
            raise ConfigError(f"[model] modular-mlp gives modules x width = {modules * width} "
                              f"features, not d_out = {d_out}; unset [train] features or change "
                              f"width")
        self.modules_, self.width, self.activation = modules, width, activation
        fan_in = [dim] + [width] * (depth - 1)
        self.weights = nn.ParameterList(
            nn.Parameter(torch.randn(modules, f, width) * (init_scale / f**0.5)) for f in fan_in)
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(modules, width)) for _ in fan_in)
        self.d_out = self.d_features = modules * width

    def module_features(self, x: torch.Tensor) -> torch.Tensor:
        """Ungated last hidden layer of every module, ``(B, modules, width)``."""
        act = ACTIVATIONS[self.activation]
        h = act(torch.einsum("bd,mdw->bmw", x, self.weights[0]) + self.biases[0])
        for weight, bias in zip(self.weights[1:], self.biases[1:]):
            h = act(torch.einsum("bmv,mvw->bmw", h, weight) + bias)
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features ``(B, modules * width)``: module k's hidden layer times the gate ``x[:, k]``."""
        gated = self.module_features(x) * x[:, : self.modules_, None]
        return gated.flatten(1)
