"""Planted data with known answers, shared by the overtone-dynamics tests."""

from __future__ import annotations

import numpy as np
import xarray as xr


def planted_embedding(p: int, d: int, keys: list[int], noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """W (p, d) whose columns are cos/sin of 2 pi k n / p for the key frequencies k, mixed by a
    random orthogonal map (so no column is a pure wave), plus optional noise."""
    rng = np.random.default_rng(seed)
    n = np.arange(p)
    waves = []
    for k in keys:
        waves += [np.cos(2 * np.pi * k * n / p), np.sin(2 * np.pi * k * n / p)]
    waves = np.stack(waves, axis=1)  # (p, 2 * len(keys))
    mix, _ = np.linalg.qr(rng.normal(size=(d, d)))
    w = waves @ mix[: waves.shape[1]]
    return w + noise * rng.normal(size=(p, d))


def with_steps(arrays: list[np.ndarray], dims: tuple[str, ...], name: str, steps=None) -> xr.Dataset:
    """A dataset with one variable stacked over a leading step dim."""
    steps = np.arange(len(arrays)) * 100 if steps is None else steps
    return xr.Dataset({name: (("step", *dims), np.stack(arrays))}, coords={"step": steps})
