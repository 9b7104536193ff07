"""Character-level language modelling on a text file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch
from overtone import ConfigError

from overtone_torch.tasks.base import check_fraction


def default_corpus() -> Path:
    """The bundled public-domain corpus (``data/corpus.txt`` in the package or the repository)."""
    here = Path(__file__).resolve()
    for candidate in (here.parents[1] / "data" / "corpus.txt", here.parents[5] / "data" / "corpus.txt"):
        if candidate.exists():
            return candidate
    raise ConfigError("[task] char-text: no bundled corpus found; pass path = 'some.txt'")


class CharText:
    """Next-character prediction over windows of ``context`` characters.

    The first ``1 - eval_fraction`` of the text trains, the rest evaluates; the vocabulary is
    every character of the file.
    """

    def __init__(self, *, seed: int, path: str = "", context: int = 128, eval_fraction: float = 0.1,
                 eval_windows: int = 64) -> None:
        file = Path(path) if path else default_corpus()
        if not file.exists():
            raise ConfigError(f"[task] path = {str(file)!r} not found; give a UTF-8 text file")
        text = file.read_text(encoding="utf-8", errors="replace")
        check_fraction("eval_fraction", eval_fraction)
        self.chars = sorted(set(text))
        lookup = {c: i for i, c in enumerate(self.chars)}
        data = torch.tensor([lookup[c] for c in text], dtype=torch.long)
        cut = int(len(data) * (1 - eval_fraction))
        self.data = {"train": data[:cut], "eval": data[cut:]}
        if min(len(d) for d in self.data.values()) <= context + 1:
            raise ConfigError(f"[task] {str(file)!r} is too short for context = {context}")
        self.context, self.eval_windows, self.seed = context, eval_windows, seed
        self.input_spec = {"kind": "tokens", "vocab_size": len(self.chars), "seq_len": context,
                           "output": "sequence"}
        self.n_classes = len(self.chars)
        self.train_size = None

    def _windows(self, split: str, starts: torch.Tensor):
        offsets = torch.arange(self.context + 1)
        chunk = self.data[split][starts[:, None] + offsets]
        return chunk[:, :-1], chunk[:, 1:]

    def sample_batch(self, split: str, batch_size: int, generator: torch.Generator):
        high = len(self.data[split]) - self.context - 1
        return self._windows(split, torch.randint(0, high, (batch_size,), generator=generator))

    def eval_batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        high = len(self.data["eval"]) - self.context - 1
        starts = torch.linspace(0, high, self.eval_windows).long()
        for i in range(0, len(starts), batch_size):
            yield self._windows("eval", starts[i:i + batch_size])

    def probe_batch(self, n: int):
        x, y = self._windows("eval", torch.arange(n) * self.context)
        return x, y[:, -1]

    def input_grid(self):
        return None

    def token_labels(self):
        return [repr(c)[1:-1] for c in self.chars]

    def describe(self):
        return {"characters": len(self.data["train"]) + len(self.data["eval"]), "vocab": len(self.chars)}
