"""The ``kan`` model: KAN layers over vectors or embedded tokens, with grid extension by step."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from overtone import ConfigError
from torch import nn

from overtone_torch.kan.layer import BASES, KANLayer
from overtone_torch.models.spec import check_input_spec


def check_schedule(grid_schedule: Sequence[Sequence[int]], grid_size: int) -> list[tuple[int, int]]:
    """``[[step, G], ...]`` checked: steps >= 1 and G both strictly increasing, G above ``grid_size``."""
    pairs: list[tuple[int, int]] = []
    for entry in grid_schedule:
        if (not isinstance(entry, (list, tuple)) or len(entry) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in entry)):
            raise ConfigError(f"[model] grid_schedule entry {entry!r} must be [step, grid_size] (two integers), "
                              f"e.g. grid_schedule = [[1000, 10], [2000, 20]]")
        pairs.append((entry[0], entry[1]))
    step, size = 0, grid_size
    for s, g in pairs:
        if s <= step or g <= size:
            raise ConfigError(f"[model] grid_schedule = {[list(p) for p in pairs]} must have steps >= 1 and "
                              f"grid sizes > grid_size = {grid_size}, both strictly increasing")
        step, size = s, g
    return pairs


class KAN(nn.Module):
    """``depth`` KAN layers of ``width`` units (Liu et al. 2024); features of width ``d_features``.

    Token inputs ``(B, T)`` are embedded (``embed_dim`` per token, initialised ``U(grid_range)``
    so they fall on the grid) and concatenated to ``(B, T * embed_dim)``; vector inputs
    ``(B, dim)`` enter directly. Layer widths are ``[d_in] + [width] * depth``, then one more
    layer to ``d_out`` when ``d_out`` is given and differs from ``width`` (or ``depth = 0``);
    ``d_out = None`` lets the model give ``width`` features.

    Grid extension: ``grid_schedule = [[step, G], ...]``. The training loop calls
    :meth:`on_step` with the number of optimizer steps done after each step; at a scheduled
    step every layer is refined to ``G`` (see :meth:`KANLayer.extend_grid`) and the method
    returns the parameters whose values and shapes changed, whose optimizer state the loop
    must drop. The grids stay on ``grid_range`` (no data-adaptive grid updates).
    """

    def __init__(self, *, input_spec: dict[str, Any], d_out: int | None = None, width: int = 16,
                 depth: int = 1, grid_size: int = 5, order: int = 3, basis: str = "bspline",
                 grid_range: Sequence[float] = (-1.0, 1.0), grid_schedule: Sequence[Sequence[int]] = (),
                 embed_dim: int = 16, noise_scale: float = 0.5, scale_base_mu: float = 0.0,
                 scale_base_sigma: float = 1.0) -> None:
        super().__init__()
        kind, _ = check_input_spec("kan", input_spec, ("tokens", "vector"), ("pooled",), "transformer")
        if depth < 0 or width < 1 or embed_dim < 1 or (d_out is not None and d_out < 1):
            raise ConfigError(f"[model] kan needs depth >= 0 and width, embed_dim, d_out >= 1 "
                              f"(got depth={depth}, width={width}, embed_dim={embed_dim}, d_out={d_out})")
        if basis not in BASES:
            raise ConfigError(f"[model] basis = {basis!r}; allowed: {', '.join(BASES)}")
        if len(grid_range) != 2:
            raise ConfigError(f"[model] grid_range = {list(grid_range)} must be [low, high]")
        self.schedule = check_schedule(grid_schedule, grid_size)
        self.initial_grid_size = grid_size
        low, high = float(grid_range[0]), float(grid_range[1])
        if kind == "tokens":
            self.token_embedding: nn.Embedding | None = nn.Embedding(input_spec["vocab_size"], embed_dim)
            with torch.no_grad():
                self.token_embedding.weight.uniform_(low, high)
            d_in = embed_dim * input_spec["seq_len"]
        else:
            self.token_embedding = None
            d_in = input_spec["dim"]
        dims = [d_in] + [width] * depth
        if d_out is not None and (depth == 0 or d_out != width):
            dims.append(d_out)
        elif depth == 0:
            dims.append(width)
        options = dict(grid_size=grid_size, order=order, grid_range=(low, high), basis=basis,
                       noise_scale=noise_scale, scale_base_mu=scale_base_mu, scale_base_sigma=scale_base_sigma)
        self.layers = nn.ModuleList(KANLayer(a, b, **options) for a, b in zip(dims[:-1], dims[1:]))
        self.d_features: int = dims[-1]
        self.d_out = self.d_features
        self.width = width

    @property
    def grid_size(self) -> int:
        """The current number of grid intervals (degree, for Chebyshev) of every layer."""
        return self.layers[0].grid_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features ``(B, d_features)`` of token ids ``(B, T)`` or vectors ``(B, dim)``."""
        if self.token_embedding is not None:
            x = self.token_embedding(x).flatten(1)
        for layer in self.layers:
            x = layer(x)
        return x

    def extend_grid(self, grid_size: int) -> list[nn.Parameter]:
        """Refine every layer to ``grid_size``; returns the ``coef`` parameters that were replaced."""
        for layer in self.layers:
            layer.extend_grid(grid_size)
        return [layer.coef for layer in self.layers]

    def on_step(self, step: int) -> list[nn.Parameter]:
        """Refine to the grid size ``grid_schedule`` gives after ``step`` optimizer steps, if larger.

        Returns the parameters whose optimizer state must be dropped (empty when nothing was
        due). A grid size already reached does nothing, so calling it at every step, at some
        steps only (it catches up to the latest entry due), or after a resume whose checkpoint
        holds the extended grid, refines each layer once per schedule entry at most.
        """
        size = self.grid_size_at(step)
        return self.extend_grid(size) if size > self.grid_size else []

    def grid_size_at(self, step: int) -> int:
        """The grid size the schedule gives after ``step`` optimizer steps."""
        size = self.initial_grid_size
        for due, g in self.schedule:
            if step >= due:
                size = g
        return size
