"""Task ``multitask-sparse-parity``: many parity skills behind task-selection bits.

The setting of Michaud et al. (the "quanta" model of neural scaling) used by arXiv 2501.12391:
an input is ``n_tasks`` control bits (one-hot: which task) followed by ``n_bits`` data bits;
task k has its own fixed subset ``S_k`` of ``k_bits`` data bits, and the label is the parity
``sum_{i in S_k} x_i mod 2``. Task k is drawn with frequency ``p_k ~ k^-alpha``. Training
batches are fresh samples from the engine's generator (an endless stream, as in the paper);
the evaluation set holds ``eval_per_task`` examples of *every* task, so per-skill losses are
measured equally well for rare skills. ``skill_of(x)`` names the task of each example, which
the engine uses to report ``eval_loss_skill`` and ``eval_acc_skill`` over a ``skill`` dim.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from overtone import ConfigError

from overtone_skills.toy_models import task_frequencies


class MultitaskSparseParity:
    """Multitask sparse parity (see the module docstring); binary labels, vector inputs."""

    n_classes = 2
    train_size = None  # an endless stream of fresh samples

    def __init__(self, *, seed: int, n_tasks: int = 10, n_bits: int = 32, k_bits: int = 3,
                 alpha: float = 2.0, eval_per_task: int = 256) -> None:
        for name, value, low in (("n_tasks", n_tasks, 1), ("n_bits", n_bits, 1),
                                 ("k_bits", k_bits, 1), ("eval_per_task", eval_per_task, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"[task] {name} = {value!r} must be an integer >= {low}")
        if k_bits > n_bits:
            raise ConfigError(f"[task] k_bits = {k_bits} exceeds n_bits = {n_bits}; "
                              f"each parity reads k_bits of the n_bits data bits")
        rng = np.random.default_rng(seed)
        self.subsets = torch.tensor(np.stack([rng.choice(n_bits, size=k_bits, replace=False)
                                              for _ in range(n_tasks)]))
        self.p = torch.tensor(task_frequencies(n_tasks, alpha), dtype=torch.float64)
        self.n_tasks, self.n_bits, self.k_bits, self.alpha = n_tasks, n_bits, k_bits, alpha
        self.input_spec = {"kind": "vector", "dim": n_tasks + n_bits, "output": "pooled"}
        tasks = torch.arange(n_tasks).repeat_interleave(eval_per_task)
        self.eval_x, self.eval_y = self._examples(tasks, torch.Generator().manual_seed(seed + 1))

    def _examples(self, tasks: torch.Tensor, generator: torch.Generator):
        """Inputs and parity labels for the given task ids, data bits drawn with ``generator``."""
        bits = torch.randint(0, 2, (len(tasks), self.n_bits), generator=generator)
        control = torch.nn.functional.one_hot(tasks, self.n_tasks)
        labels = bits.gather(1, self.subsets[tasks]).sum(1) % 2
        return torch.cat([control, bits], 1).float(), labels.long()

    def sample_batch(self, split: str, batch_size: int, generator: torch.Generator):
        """Fresh training examples (tasks drawn from ``p``), or random evaluation examples."""
        if split == "eval":
            index = torch.randint(0, len(self.eval_y), (batch_size,), generator=generator)
            return self.eval_x[index], self.eval_y[index]
        tasks = torch.multinomial(self.p, batch_size, replacement=True, generator=generator)
        return self._examples(tasks, generator)

    def eval_batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Every evaluation example in order (``eval_per_task`` of each task)."""
        for start in range(0, len(self.eval_y), batch_size):
            yield self.eval_x[start:start + batch_size], self.eval_y[start:start + batch_size]

    def skill_of(self, x: torch.Tensor) -> torch.Tensor:
        """The task (skill) index of each input: the position of its control bit."""
        return x[:, : self.n_tasks].argmax(1)

    def skill_labels(self) -> list[str]:
        """Names of the skills, in frequency order."""
        return [f"parity {k + 1}" for k in range(self.n_tasks)]

    def probe_batch(self, n: int):
        return self.eval_x[:n], self.eval_y[:n]

    def input_grid(self):
        return None

    def token_labels(self):
        return None

    def describe(self) -> dict[str, Any]:
        return {"n_tasks": self.n_tasks, "n_bits": self.n_bits, "k_bits": self.k_bits,
                "alpha": self.alpha}
