"""A multilayer perceptron over vectors or over embedded tokens."""

from __future__ import annotations

from typing import Any

import torch
from overtone import ConfigError
from torch import nn

from overtone_torch.models.spec import check_input_spec

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh}


def check_activation_and_scale(activation: str, init_scale: float) -> None:
    """Raise a one-line ``ConfigError`` unless ``activation`` is one of :data:`ACTIVATIONS` and
    ``init_scale`` is positive (the guards of the MLP-like models, for direct Python use)."""
    if activation not in ACTIVATIONS:
        raise ConfigError(f"[model] activation = {activation!r}; allowed: {', '.join(ACTIVATIONS)}")
    if init_scale <= 0:
        raise ConfigError(f"[model] init_scale = {init_scale} must be positive")


class MLP(nn.Module):
    """``depth`` hidden layers ``h <- act(W h + b)`` of ``width`` units; features of width ``d_out``.

    Token inputs ``(B, T)`` are embedded (``token_embedding``, ``embed_dim`` per token) and
    concatenated to ``(B, T * embed_dim)``, as in the grokking MLPs (Liu et al. 2022, Nanda
    et al. 2023); vector inputs ``(B, dim)`` enter directly. The features are the last hidden
    layer's activations when ``d_out == width`` (``d_out = None``: ``width``); otherwise (or when ``depth = 0``) a final
    linear map to ``d_out`` follows. Linear weights start as ``N(0, init_scale^2 / fan_in)``
    with zero biases, embeddings as ``N(0, embed_std^2)`` (``embed_std = None``: ``init_scale``).
    With ``tie_weights`` the engine makes the loss head's ``weight`` the token embedding (the
    harmonic loss's reference MLP ties its class centres to the input embeddings); this needs
    ``d_out == embed_dim`` and as many tokens as classes.
    """

    def __init__(self, *, input_spec: dict[str, Any], d_out: int | None = None, width: int = 256, depth: int = 1,
                 activation: str = "relu", init_scale: float = 1.0, embed_dim: int = 128,
                 embed_std: float | None = None, tie_weights: bool = False) -> None:
        super().__init__()
        d_out = width if d_out is None else d_out
        kind, _ = check_input_spec("mlp", input_spec, ("tokens", "vector"), ("pooled",), "transformer")
        if depth < 0 or width < 1 or embed_dim < 1 or d_out < 1:
            raise ConfigError(f"[model] mlp needs depth >= 0 and width, embed_dim, d_out >= 1 "
                              f"(got depth={depth}, width={width}, embed_dim={embed_dim}, d_out={d_out})")
        check_activation_and_scale(activation, init_scale)
        embed_std = init_scale if embed_std is None else embed_std
        if not embed_std > 0:
            raise ConfigError(f"[model] embed_std = {embed_std} must be positive (or left out: init_scale)")
        if tie_weights and kind != "tokens":
            raise ConfigError("[model] tie_weights needs token inputs (a token embedding to tie the head to); "
                              "set tie_weights = false")
        self.tie_weights = tie_weights
        if kind == "tokens":
            self.token_embedding: nn.Embedding | None = nn.Embedding(input_spec["vocab_size"], embed_dim)
            d_in = embed_dim * input_spec["seq_len"]
        else:
            self.token_embedding = None
            d_in = input_spec["dim"]
        layers: list[nn.Module] = []
        for i in range(depth):
            layers += [nn.Linear(d_in if i == 0 else width, width), ACTIVATIONS[activation]()]
        if depth == 0 or d_out != width:
            layers.append(nn.Linear(width if depth else d_in, d_out))
        self.layers = nn.Sequential(*layers)
        self.d_out = self.d_features = d_out
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, nn.Linear):
                    module.weight.normal_(0.0, init_scale / module.in_features**0.5)
                    module.bias.zero_()
                elif isinstance(module, nn.Embedding):
                    module.weight.normal_(0.0, embed_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features ``(B, d_out)`` of token ids ``(B, T)`` or vectors ``(B, dim)``."""
        if self.token_embedding is not None:
            x = self.token_embedding(x).flatten(1)
        return self.layers(x)
