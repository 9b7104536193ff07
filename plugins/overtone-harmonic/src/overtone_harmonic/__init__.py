"""overtone-harmonic: the harmonic loss (arXiv 2502.01628).

The public names are imported on first use, so that listing plugins (which imports
``overtone_harmonic.plugin``) never imports torch.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "HarmonicLoss": "overtone_harmonic.loss",
    "chunked_harmonic_loss": "overtone_harmonic.chunked",
    "exponent_on_distance": "overtone_harmonic.functional",
    "harmonic_logits": "overtone_harmonic.functional",
    "squared_distances": "overtone_harmonic.functional",
    "triton_harmonic_loss": "overtone_harmonic.triton_head",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'overtone_harmonic' has no attribute {name!r}")
