"""Registration of the harmonic loss. Imports only overtone."""

from overtone import Component, Param, hookimpl


@hookimpl
def overtone_losses():
    return [
        Component(
            "loss",
            "harmonic",
            "overtone_harmonic.loss:HarmonicLoss",
            "harmonic loss (arXiv 2502.01628): p_i ~ ||x - w_i||^-n, distance-based head",
            params={
                "n": Param(None, type=(float, int), help="harmonic exponent (default: 2 sqrt(d_in) on d, i.e. sqrt(d_in) on d^2)"),
                "convention": Param("distance", choices=("distance", "squared"),
                                    help="n applies to d (the paper) or to d^2 (the reference code: its n is half the paper's)"),
                "chunk_size": Param(None, type=int, help="rows per chunk; never materialises (N, V) logits"),
                "eps": Param(1e-12, help="floor of d^2, so x = w_i gives a finite loss and no NaN"),
            },
        )
    ]
