"""overtone-harmonic: the harmonic loss (arXiv 2502.01628)."""

from overtone_harmonic.chunked import chunked_harmonic_loss
from overtone_harmonic.functional import exponent_on_distance, harmonic_logits, squared_distances
from overtone_harmonic.loss import HarmonicLoss

__version__ = "0.1.0"
__all__ = ["HarmonicLoss", "chunked_harmonic_loss", "exponent_on_distance", "harmonic_logits",
           "squared_distances"]
