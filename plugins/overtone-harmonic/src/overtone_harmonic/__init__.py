"""overtone-harmonic: the harmonic loss (arXiv 2502.01628).

``HarmonicLoss`` and ``harmonic_logits`` are imported on first use, so that listing plugins
(which imports ``overtone_harmonic.plugin``) never imports torch.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["HarmonicLoss", "harmonic_logits"]


def __getattr__(name: str):
    if name in __all__:
        from overtone_harmonic import loss

        return getattr(loss, name)
    raise AttributeError(f"module 'overtone_harmonic' has no attribute {name!r}")
