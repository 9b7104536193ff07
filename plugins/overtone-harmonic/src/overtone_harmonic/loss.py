"""The harmonic loss component (Baek, Liu, Tegmark et al. 2025, arXiv 2502.01628).

The head holds one centre ``w_i`` per class. With ``d_i = ||x - w_i||_2``,

    p_i = d_i^-n / sum_j d_j^-n,     loss = -log p_y,

computed in log space as a softmax over ``z_i = -n log d_i = -(n/2) log d_i^2``, with
``d_i^2 = ||x||^2 + ||w_i||^2 - 2 x . w_i`` (one matrix product) floored at ``eps``
(``eps_mode = "floor"``, default ``1e-12``), or with ``eps`` added (``eps_mode = "add"``,
default ``1e-4``: the reference code's ``DistLayer``; then ``p`` is not exactly scale invariant).

Exponent convention: ``n`` here is the paper's, on the distance. The public reference code
raises the *squared* distance to ``-n``, so its ``n`` is half of ours; ``convention =
"squared"`` takes a reference-style value. The default ``n = 2 sqrt(d_in)`` on ``d`` is
``sqrt(d_in)`` on ``d^2``, the middle of the reference's suggestions (1, sqrt(D), D on ``d^2``)
and its MNIST choice (28 = sqrt(784)).

``impl = "triton"`` computes the same loss with the Triton kernels of
:mod:`overtone_harmonic.triton_head` (GPU; the ``overtone-harmonic[triton]`` extra).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from overtone_harmonic.chunked import accumulation_dtype, chunked_harmonic_loss
from overtone_harmonic.functional import (
    DEFAULT_EPS,
    IGNORE,
    eps_floor_and_shift,
    exponent_on_distance,
    harmonic_logits,
    triton_interpreter_requested,
)


class HarmonicLoss(nn.Module):
    """Distance-based output head with the harmonic loss; ``self.weight (n_classes, d_in)`` holds
    the class centres (the engine may tie it to a token embedding, as the paper's GPT-2 does).

    ``forward(features, targets)``: mean of ``-log p_y`` over targets that are not ``-100``
    (features ``(N, d)`` or ``(B, T, d)``). Without ``chunk_size`` it is plain autograd over the
    full ``(N, V)`` logits (the reference path); with ``chunk_size`` it runs
    :func:`~overtone_harmonic.chunked.chunked_harmonic_loss`, which never holds more than two
    ``(chunk_size, V)`` blocks; with ``impl = "triton"`` it runs
    :func:`~overtone_harmonic.triton_head.triton_harmonic_loss` (CUDA tensors, or CPU under
    ``TRITON_INTERPRET=1``). ``scores(features)``: the harmonic logits ``-n log d_i``
    (``softmax`` gives ``p``; ``argmax`` is the nearest centre). Distances are computed in
    float32 even under autocast (float64 for float64 inputs): half precision cancels badly in
    ``||x||^2 + ||w||^2 - 2 x . w``.
    """

    #: The class centres are positions, not a linear map: the torch engine exempts them from weight decay.
    no_weight_decay = ("weight",)

    def __init__(self, *, d_in: int, n_classes: int, n: float | None = None, convention: str = "distance",
                 chunk_size: int | None = None, eps: float | None = None, init_scale: float = 1.0,
                 eps_mode: str = "floor", impl: str = "torch") -> None:
        super().__init__()
        from overtone import ConfigError

        if d_in < 1 or n_classes < 2:
            raise ConfigError(f"[loss] the harmonic head needs d_in >= 1 and n_classes >= 2 (got {d_in}, {n_classes})")
        self.n = exponent_on_distance(n, convention, d_in)
        if chunk_size is not None and chunk_size < 1:
            raise ConfigError(f"[loss] chunk_size = {chunk_size} must be at least 1 (or left out for no chunking)")
        eps = DEFAULT_EPS.get(eps_mode, 1e-12) if eps is None else eps
        eps_floor_and_shift(eps, eps_mode)  # checks eps_mode
        if not eps > 0:
            raise ConfigError(f"[loss] eps = {eps} must be positive (it floors d^2, or is added to it, "
                              "so that x = w_i stays finite)")
        if impl not in ("torch", "triton"):
            raise ConfigError(f"[loss] impl = {impl!r}; allowed: 'torch' (reference or chunked) or 'triton' (GPU kernels)")
        if impl == "triton":
            if chunk_size is not None:
                raise ConfigError("[loss] chunk_size is for impl = 'torch'; impl = 'triton' tiles by itself "
                                  "(leave chunk_size out)")
            if eps_mode != "floor":
                raise ConfigError(f"[loss] impl = 'triton' floors d^2 at eps; eps_mode = {eps_mode!r} needs "
                                  "impl = 'torch'")
            _require_triton()
        self.eps, self.eps_mode, self.chunk_size, self.impl = float(eps), eps_mode, chunk_size, impl
        self.weight = nn.Parameter(torch.randn(n_classes, d_in) * (init_scale / math.sqrt(d_in)))

    def scores(self, features: torch.Tensor) -> torch.Tensor:
        """Harmonic logits ``-n log ||x - w_i||``, shape ``(..., n_classes)``."""
        x = features.reshape(-1, features.shape[-1])
        acc = accumulation_dtype(x, self.weight)
        with torch.autocast(x.device.type, enabled=False):
            z = harmonic_logits(x.to(acc), self.weight.to(acc), self.n, self.eps, self.eps_mode)
        return z.reshape(*features.shape[:-1], -1)

    def forward(self, features: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean ``-log p_y`` over the targets that are not ``-100``."""
        x, t = features.reshape(-1, features.shape[-1]), targets.reshape(-1)
        if self.impl == "triton":
            from overtone_harmonic.triton_head import triton_harmonic_loss

            return triton_harmonic_loss(x, self.weight, t, self.n, self.eps)
        if self.chunk_size:
            return chunked_harmonic_loss(x, self.weight, t, self.n, self.eps, self.chunk_size, self.eps_mode)
        return F.cross_entropy(self.scores(x), t, ignore_index=IGNORE)

    #: ``[loss]`` keys that may differ between the members of a vectorized pack (``overtone sweep
    #: --vectorize``): the exponent and what only changes the initial centres.
    pack_keys = ("n", "convention", "init_scale")

    def member_values(self) -> dict[str, float]:
        """This member's per-member values for :meth:`member_forward`: its exponent ``n`` on the distance."""
        return {"n": self.n}

    def member_forward(self, params: dict[str, torch.Tensor], features: torch.Tensor, targets: torch.Tensor,
                       values: dict[str, torch.Tensor]) -> torch.Tensor:
        """:meth:`forward` of one member of a pack (under ``vmap``): centres ``params["weight"]``
        and exponent ``values["n"]`` (a 0-dim tensor); mean ``-log p_y`` over kept targets."""
        x, t = features.reshape(-1, features.shape[-1]), targets.reshape(-1)
        weight = params["weight"]
        acc = accumulation_dtype(x, weight)
        z = harmonic_logits(x.to(acc), weight.to(acc), values["n"], self.eps, self.eps_mode)
        logp = torch.log_softmax(z, -1)
        keep = t != IGNORE
        nll = -logp.gather(-1, torch.where(keep, t, 0).unsqueeze(-1)).squeeze(-1)
        return (nll * keep).sum() / keep.sum().clamp_min(1)

    def extra_repr(self) -> str:
        return (f"d_in={self.weight.shape[1]}, n_classes={self.weight.shape[0]}, n={self.n:g} (on the distance), "
                f"chunk_size={self.chunk_size}, eps={self.eps:g} ({self.eps_mode}), impl={self.impl}")


def _require_triton() -> None:
    """Raise a one-line error unless Triton imports and a CUDA device (or ``TRITON_INTERPRET=1``) is there."""
    from overtone import ConfigError

    try:
        import triton  # noqa: F401
    except ImportError as error:
        raise ConfigError(f"[loss] impl = 'triton' needs the triton package ({error}); "
                          "pip install 'overtone-harmonic[triton]', or use impl = 'torch'") from None
    if not (triton_interpreter_requested() or torch.cuda.is_available()):
        raise ConfigError("[loss] impl = 'triton' needs a CUDA device and none was found; use impl = 'torch' "
                          "(chunk_size for long vocabularies), or set TRITON_INTERPRET=1 to run Triton's slow CPU interpreter")
