"""A GPT-2-style decoder: learned positions, pre-LayerNorm blocks, causal self-attention."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from overtone import ConfigError
from torch import nn

PRESETS = {"gpt2-small": {"n_layer": 12, "n_head": 12, "d_model": 768, "context": 1024}}


class Block(nn.Module):
    """``x + attn(ln(x))`` then ``x + mlp(ln(x))`` (Radford et al. 2019, pre-LN)."""

    def __init__(self, d_model: int, n_head: int, dropout: float, bias: bool) -> None:
        super().__init__()
        self.n_head, self.dropout = n_head, dropout
        self.ln_1 = nn.LayerNorm(d_model, bias=bias)
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=bias)
        self.proj = nn.Linear(d_model, d_model, bias=bias)
        self.ln_2 = nn.LayerNorm(d_model, bias=bias)
        self.mlp = nn.Sequential(nn.Linear(d_model, 4 * d_model, bias=bias), nn.GELU(),
                                 nn.Linear(4 * d_model, d_model, bias=bias), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln_1(x)).split(d, dim=2)
        q, k, v = (z.view(b, t, self.n_head, d // self.n_head).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                           dropout_p=self.dropout if self.training else 0.0)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    """Token and position embeddings, ``n_layer`` blocks, a final LayerNorm; features ``d_model``.

    ``output = "pooled"`` tasks get the last position's features ``(B, d)``, sequence tasks
    ``(B, T, d)``. ``preset = "gpt2-small"`` sets the 124M-parameter shape. With
    ``tie_weights`` the engine shares the loss head with ``token_embedding``.
    """

    def __init__(self, *, input_spec: dict[str, Any], d_out: int, n_layer: int = 2, n_head: int = 4,
                 d_model: int = 128, context: int = 0, dropout: float = 0.0, bias: bool = True,
                 tie_weights: bool = False, preset: str = "") -> None:
        super().__init__()
        if preset:
            n_layer, n_head, d_model, context = (PRESETS[preset][k] for k in ("n_layer", "n_head", "d_model", "context"))
        if input_spec["kind"] != "tokens":
            raise ConfigError("[model] transformer takes token inputs; use 'mlp' for vector tasks")
        if d_model % n_head:
            raise ConfigError(f"[model] d_model = {d_model} must be divisible by n_head = {n_head}")
        if d_out != d_model:
            raise ConfigError(f"[model] transformer features have width d_model = {d_model}; got d_out = {d_out}")
        context = context or input_spec["seq_len"]
        if input_spec["seq_len"] > context:
            raise ConfigError(f"[model] context = {context} is shorter than the task's sequences ({input_spec['seq_len']})")
        self.pooled = input_spec.get("output", "pooled") == "pooled"
        self.tie_weights = tie_weights
        self.token_embedding = nn.Embedding(input_spec["vocab_size"], d_model)
        self.position_embedding = nn.Embedding(context, d_model)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(d_model, n_head, dropout, bias) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(d_model, bias=bias)
        self.apply(self._init)
        for name, p in self.named_parameters():  # GPT-2's scaled init of residual projections
            if name.endswith(("proj.weight", "mlp.2.weight")):
                nn.init.normal_(p, 0.0, 0.02 / (2 * n_layer) ** 0.5)

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, 0.0, 0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(x.shape[1], device=x.device)
        h = self.drop(self.token_embedding(x) + self.position_embedding(positions))
        for block in self.blocks:
            h = block(h)
        h = self.ln_f(h)
        return h[:, -1] if self.pooled else h
