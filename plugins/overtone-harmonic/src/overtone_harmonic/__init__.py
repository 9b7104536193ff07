"""overtone-harmonic: the harmonic loss (arXiv 2502.01628)."""

from overtone_harmonic.loss import HarmonicLoss, harmonic_logits

__version__ = "0.1.0"
__all__ = ["HarmonicLoss", "harmonic_logits"]
