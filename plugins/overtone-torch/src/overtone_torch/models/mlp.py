"""A multilayer perceptron over vectors or over embedded tokens."""

from __future__ import annotations

from typing import Any

import torch
from overtone import ConfigError
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh}


class MLP(nn.Module):
    """``depth`` hidden layers of ``width`` units, then a linear map to ``d_out`` features.

    Token inputs ``(B, T)`` are embedded (``token_embedding``, ``embed_dim`` each) and
    concatenated, as in the grokking MLPs. Every weight is initialised from
    ``N(0, init_scale^2 / fan_in)``.
    """

    def __init__(self, *, input_spec: dict[str, Any], d_out: int, width: int = 256, depth: int = 1,
                 activation: str = "relu", init_scale: float = 1.0, embed_dim: int = 128) -> None:
        super().__init__()
        if input_spec.get("output", "pooled") != "pooled":
            raise ConfigError("[model] mlp gives one feature vector per example; this task needs a "
                              "sequence model: use name = 'transformer'")
        if depth < 0 or width < 1:
            raise ConfigError(f"[model] mlp needs depth >= 0 and width >= 1 (got depth={depth}, width={width})")
        if input_spec["kind"] == "tokens":
            self.token_embedding = nn.Embedding(input_spec["vocab_size"], embed_dim)
            d_in = embed_dim * input_spec["seq_len"]
        elif input_spec["kind"] == "vector":
            self.token_embedding = None
            d_in = input_spec["dim"]
        else:
            raise ConfigError(f"[model] mlp cannot take inputs of kind {input_spec['kind']!r}")
        layers: list[nn.Module] = []
        for i in range(depth):
            layers += [nn.Linear(d_in if i == 0 else width, width), ACTIVATIONS[activation]()]
        layers.append(nn.Linear(width if depth else d_in, d_out))
        self.layers = nn.Sequential(*layers)
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, nn.Linear):
                    module.weight.normal_(0.0, init_scale / module.in_features**0.5)
                    module.bias.zero_()
                elif isinstance(module, nn.Embedding):
                    module.weight.normal_(0.0, init_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.token_embedding is not None:
            x = self.token_embedding(x).flatten(1)
        return self.layers(x)
