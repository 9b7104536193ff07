"""A GPT-2-style decoder: learned positions, pre-LayerNorm blocks, causal self-attention."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from overtone import ConfigError
from torch import nn

from overtone_torch.models.spec import check_input_spec

#: Named shapes. gpt2-small (Radford et al. 2019): 124,439,808 parameters with a 50,257-token
#: vocabulary and the unembedding tied to the token embedding.
PRESETS = {"gpt2-small": {"n_layer": 12, "n_head": 12, "d_model": 768, "context": 1024}}


class CausalSelfAttention(nn.Module):
    """Multi-head attention ``softmax(q k^T / sqrt(d_head) + causal mask) v`` (fused SDPA kernel)."""

    def __init__(self, d_model: int, n_head: int, dropout: float, bias: bool) -> None:
        super().__init__()
        self.n_head, self.dropout = n_head, dropout
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=bias)
        self.proj = nn.Linear(d_model, d_model, bias=bias)
        self.resid_drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = (z.view(b, t, self.n_head, d // self.n_head).transpose(1, 2) for z in self.qkv(x).split(d, dim=2))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0)
        return self.resid_drop(self.proj(y.transpose(1, 2).reshape(b, t, d)))


class Block(nn.Module):
    """``x + attn(ln_1(x))`` then ``x + mlp(ln_2(x))`` (pre-LN, as in GPT-2)."""

    def __init__(self, d_model: int, n_head: int, dropout: float, bias: bool) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(d_model, bias=bias)
        self.attn = CausalSelfAttention(d_model, n_head, dropout, bias)
        self.ln_2 = nn.LayerNorm(d_model, bias=bias)
        self.mlp = nn.Sequential(nn.Linear(d_model, 4 * d_model, bias=bias), nn.GELU(approximate="tanh"),
                                 nn.Linear(4 * d_model, d_model, bias=bias), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    """Token + learned position embeddings, ``n_layer`` pre-LN blocks, a final LayerNorm.

    Features have width ``d_features = d_model`` (``d_out``, when given, must equal it): ``(B, T, d)`` for tasks with
    ``output = "sequence"`` (language modelling), the last position's ``(B, d)`` for
    ``"pooled"`` tasks (e.g. ``a b -> c`` in modular arithmetic). Attention is causal, so a
    position never sees later tokens. ``context`` (0: the task's sequence length) is the
    number of learned positions. ``preset = "gpt2-small"`` sets ``n_layer, n_head, d_model,
    context = 12, 12, 768, 1024`` and overrides those four parameters. With
    ``tie_weights`` the engine makes the loss head's ``weight`` the ``token_embedding``
    weight (GPT-2 ties them). Weights start as ``N(0, 0.02^2)``, residual projections as
    ``N(0, 0.02^2 / (2 n_layer))`` (Radford et al. 2019).
    """

    def __init__(self, *, input_spec: dict[str, Any], d_out: int | None = None, n_layer: int = 2, n_head: int = 4,
                 d_model: int = 128, context: int = 0, dropout: float = 0.0, bias: bool = True,
                 tie_weights: bool = False, preset: str = "") -> None:
        super().__init__()
        if preset:
            if preset not in PRESETS:
                raise ConfigError(f"[model] preset = {preset!r}; allowed: {', '.join(PRESETS)}")
            n_layer, n_head, d_model, context = (PRESETS[preset][k] for k in ("n_layer", "n_head", "d_model", "context"))
        _, output = check_input_spec("transformer", input_spec, ("tokens",), ("pooled", "sequence"), "mlp")
        if n_layer < 1 or n_head < 1 or d_model < 1 or context < 0:
            raise ConfigError(f"[model] transformer needs n_layer, n_head, d_model >= 1 and context >= 0 "
                              f"(got {n_layer}, {n_head}, {d_model}, {context})")
        if d_model % n_head:
            raise ConfigError(f"[model] d_model = {d_model} must be divisible by n_head = {n_head}")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"[model] dropout = {dropout} must be in [0, 1)")
        if d_out is not None and d_out != d_model:
            raise ConfigError(f"[model] transformer features have width d_model = {d_model}; got d_out = {d_out} "
                              "(leave [train] features at 0)")
        context = context or input_spec["seq_len"]
        if input_spec["seq_len"] > context:
            raise ConfigError(f"[model] context = {context} is shorter than the task's sequences "
                              f"({input_spec['seq_len']}); raise context or lower the task's")
        self.pooled = output == "pooled"
        self.tie_weights = tie_weights
        self.n_layer, self.n_head, self.d_model, self.context = n_layer, n_head, d_model, context
        self.d_features = d_model
        self.token_embedding = nn.Embedding(input_spec["vocab_size"], d_model)
        self.position_embedding = nn.Embedding(context, d_model)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(d_model, n_head, dropout, bias) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(d_model, bias=bias)
        self.apply(self._init)
        for name, p in self.named_parameters():
            if name.endswith(("attn.proj.weight", "mlp.2.weight")):
                nn.init.normal_(p, 0.0, 0.02 / (2 * n_layer) ** 0.5)

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, 0.0, 0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features of token ids ``x (B, T)``: ``(B, T, d_model)``, or ``(B, d_model)`` when pooled."""
        if x.shape[1] > self.context:
            raise ValueError(f"sequence of {x.shape[1]} tokens is longer than context = {self.context}")
        positions = torch.arange(x.shape[1], device=x.device)
        h = self.drop(self.token_embedding(x) + self.position_embedding(positions))
        for block in self.blocks:
            h = block(h)
        h = self.ln_f(h)
        return h[:, -1] if self.pooled else h
