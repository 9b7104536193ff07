"""Modular arithmetic ``c = a op b (mod p)``: the grokking benchmark (Power et al. 2022)."""

from __future__ import annotations

import torch
from overtone import ConfigError

from overtone_torch.tasks.base import TensorTask, check_fraction

OPS = ("+", "-", "*", "/")


def is_prime(n: int) -> bool:
    """Trial division: True when ``n >= 2`` has no divisor in ``2..sqrt(n)``."""
    return n >= 2 and all(n % k for k in range(2, int(n**0.5) + 1))


def modular_table(p: int, op: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Every pair ``(a, b)`` in ``[0, p)^2`` (``b != 0`` for division), row-major, and ``a op b mod p``.

    Division is multiplication by the modular inverse ``b^(p-2) mod p`` (Fermat's little theorem).
    """
    a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    a, b = a.reshape(-1), b.reshape(-1)
    if op == "/":
        keep = b != 0
        a, b = a[keep], b[keep]
        inverse = torch.tensor([0] + [pow(v, p - 2, p) for v in range(1, p)])
        c = (a * inverse[b]) % p
    elif op == "+":
        c = (a + b) % p
    elif op == "-":
        c = (a - b) % p
    elif op == "*":
        c = (a * b) % p
    else:
        raise ConfigError(f"[task] op = {op!r}; allowed: {', '.join(OPS)}")
    return torch.stack([a, b], 1), c


class ModularArithmetic(TensorTask):
    """Inputs are token pairs ``(a, b)``, the label is ``a op b mod p`` (``p`` classes).

    All ``p^2`` pairs (``p (p - 1)`` for division) are split at random under ``seed``:
    ``round(train_fraction * n)`` train, the rest evaluate. With ``n_samples = N > 0``, ``N``
    pairs are first drawn uniformly *with replacement* under ``seed`` and these ``N`` are split
    the same way, so a pair may repeat and appear in both splits (the protocol of the harmonic
    loss's reference code: 1,000 draws from the 961 pairs of p = 31, split 800 / 200). The input grid for output probes
    is every pair ``(a, b)``, including ``b = 0`` for division (its row is meaningless there).
    """

    def __init__(self, *, seed: int, p: int = 97, op: str = "+", train_fraction: float = 0.3,
                 n_samples: int = 0) -> None:
        if isinstance(p, bool) or not isinstance(p, int) or not is_prime(p):
            raise ConfigError(f"[task] p = {p!r} must be a prime (e.g. 97, 113) so that every b != 0 has an inverse")
        if op not in OPS:
            raise ConfigError(f"[task] op = {op!r}; allowed: {', '.join(OPS)}")
        check_fraction("train_fraction", train_fraction)
        if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 0:
            raise ConfigError(f"[task] n_samples = {n_samples!r} must be an integer >= 0 "
                              "(0: every pair once; N: N pairs drawn with replacement)")
        self.p, self.op, self.train_fraction, self.n_samples = p, op, train_fraction, n_samples
        x, y = modular_table(p, op)
        generator = torch.Generator().manual_seed(seed)
        if n_samples:
            drawn = torch.randint(len(y), (n_samples,), generator=generator)
            x, y = x[drawn], y[drawn]
        order = torch.randperm(len(y), generator=generator)
        n_train = int(round(train_fraction * len(y)))
        train, held = order[:n_train], order[n_train:]
        super().__init__(x[train], y[train], x[held], y[held])
        self.input_spec = {"kind": "tokens", "vocab_size": p, "seq_len": 2, "output": "pooled"}
        self.n_classes = p

    def input_grid(self) -> tuple[torch.Tensor, dict[str, list[int]]]:
        """Every pair ``(a, b)`` in row-major order, with coords ``a`` and ``b``."""
        a, b = torch.meshgrid(torch.arange(self.p), torch.arange(self.p), indexing="ij")
        return torch.stack([a.reshape(-1), b.reshape(-1)], 1), {"a": list(range(self.p)), "b": list(range(self.p))}

    def token_labels(self) -> list[str]:
        return [str(i) for i in range(self.p)]

    def describe(self) -> dict[str, object]:
        return {"p": self.p, "op": self.op, "train_fraction": self.train_fraction, "n_samples": self.n_samples}
