"""Modular arithmetic ``c = a op b (mod p)``: the grokking benchmark (Power et al. 2022)."""

from __future__ import annotations

import torch
from overtone import ConfigError

from overtone_torch.tasks.base import TensorTask, check_fraction

OPS = ("+", "-", "*", "/")


def _is_prime(n: int) -> bool:
    return n >= 2 and all(n % k for k in range(2, int(n**0.5) + 1))


def modular_table(p: int, op: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Every pair ``(a, b)`` (``b != 0`` for division) and its label ``a op b mod p``.

    Division is multiplication by the modular inverse ``b^(p-2) mod p`` (Fermat).
    """
    a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    a, b = a.reshape(-1), b.reshape(-1)
    if op == "/":
        keep = b != 0
        a, b = a[keep], b[keep]
        inverse = torch.tensor([pow(int(v), p - 2, p) for v in range(p)])
        c = (a * inverse[b]) % p
    elif op == "+":
        c = (a + b) % p
    elif op == "-":
        c = (a - b) % p
    else:
        c = (a * b) % p
    return torch.stack([a, b], 1), c


class ModularArithmetic(TensorTask):
    """Inputs are token pairs ``(a, b)``; the label is ``a op b mod p``; a seeded random split."""

    def __init__(self, *, seed: int, p: int = 97, op: str = "+", train_fraction: float = 0.3) -> None:
        if not _is_prime(p):
            raise ConfigError(f"[task] p = {p} must be a prime (e.g. 97, 113) so that every b has an inverse")
        if op not in OPS:
            raise ConfigError(f"[task] op = {op!r}; allowed: {', '.join(OPS)}")
        check_fraction("train_fraction", train_fraction)
        self.p, self.op = p, op
        x, y = modular_table(p, op)
        order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
        n_train = int(round(train_fraction * len(y)))
        train, held = order[:n_train], order[n_train:]
        super().__init__(x[train], y[train], x[held], y[held])
        self.input_spec = {"kind": "tokens", "vocab_size": p, "seq_len": 2, "output": "pooled"}
        self.n_classes = p

    def input_grid(self):
        a, b = torch.meshgrid(torch.arange(self.p), torch.arange(self.p), indexing="ij")
        return torch.stack([a.reshape(-1), b.reshape(-1)], 1), {"a": list(range(self.p)), "b": list(range(self.p))}

    def token_labels(self):
        return [str(i) for i in range(self.p)]

    def describe(self):
        return {"p": self.p, "op": self.op}
