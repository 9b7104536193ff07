"""Registration of the harmonic loss. Imports only overtone (listing plugins stays torch-free)."""

from overtone import Component, Param, hookimpl


@hookimpl
def overtone_losses():
    """The ``harmonic`` loss: a distance-based output head (one centre per class)."""
    return [
        Component(
            "loss",
            "harmonic",
            "overtone_harmonic.loss:HarmonicLoss",
            "harmonic loss (arXiv 2502.01628): p_i ~ ||x - w_i||^-n, distance-based head",
            params={
                "n": Param(None, type=(float, int), min=0.0, exclusive_min=True,
                           help="harmonic exponent; default 2 sqrt(d_in) on the distance "
                                "(= sqrt(d_in) on d^2, the reference code's convention)"),
                "convention": Param("distance", choices=("distance", "squared"),
                                    help="n applies to d (the paper) or to d^2 (the reference code: "
                                         "its n is half the paper's)"),
                "chunk_size": Param(None, type=int, min=1,
                                    help="rows per chunk: never materialises the (tokens, classes) "
                                         "logits, forward or backward (default: no chunking)"),
                "eps": Param(None, type=(float, int), min=1e-30, max=1.0,
                             help="floor of d^2 (eps_mode 'floor', default 1e-12) or added to it ('add', "
                                  "default 1e-4), so x = w_i gives a finite loss and no NaN"),
                "eps_mode": Param("floor", choices=("floor", "add"),
                                  help="'floor': max(d^2, eps), scale invariant above eps; 'add': d^2 + eps, "
                                       "as the reference code (not scale invariant)"),
                "init_scale": Param(1.0, type=(float, int), help="centres start as N(0, init_scale^2 / d_in)"),
                "impl": Param("torch", choices=("torch", "triton"),
                              help="'torch': plain or chunked autograd (any device); 'triton': fused GPU kernels "
                                   "that never hold the logits (needs the overtone-harmonic[triton] extra and CUDA)"),
            },
        )
    ]
