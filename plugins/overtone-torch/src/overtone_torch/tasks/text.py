"""Character-level language modelling on a text file."""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from overtone import ConfigError

from overtone_torch.tasks.base import check_fraction, check_positive

#: The held-out blocks the eval split can hold.
EVALUATE_ON = ("tail", "validation")


def default_corpus() -> Path:
    """The bundled public-domain corpus, package data of overtone-torch: ``overtone_torch/data/corpus.txt``
    (its source and licence: ``data/README.md`` of the repository)."""
    corpus = resources.files("overtone_torch") / "data" / "corpus.txt"
    if not corpus.is_file():
        raise ConfigError("[task] char-text: the bundled corpus (overtone_torch/data/corpus.txt) is missing "
                          "from this installation; reinstall overtone-torch or pass path = 'some.txt'")
    return Path(str(corpus))


def encode(text: str) -> tuple[list[str], torch.Tensor]:
    """The sorted characters of ``text`` and ``text`` as indices into them (int64)."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype="<u4")
    chars, ids = np.unique(codes, return_inverse=True)
    return [chr(c) for c in chars], torch.from_numpy(ids.astype(np.int64).reshape(-1))


class CharText:
    """Next-character prediction over windows of ``context`` characters.

    The vocabulary is every distinct character of the file (sorted by code point). The
    first ``1 - eval_fraction`` of the text trains, the tail evaluates (a contiguous split,
    so no window straddles both). With ``validation_fraction > 0`` a validation block of that
    fraction, just before the tail, is held out of training too (text = train | validation |
    tail), and ``evaluate_on`` picks the block the eval split holds: ``"tail"`` (the reported
    split) or ``"validation"`` (for choosing hyper-parameters without looking at the tail). The
    training text is the same under either, so a run chosen on the validation block can be
    scored on the tail from its checkpoint. A batch is ``x = text[s : s + context]``,
    ``y = text[s + 1 : s + context + 1]`` at random starts ``s``; evaluation uses
    ``eval_windows`` evenly spaced windows of the tail. ``train_size`` is None: training
    windows are sampled, not enumerated.
    """

    def __init__(self, *, seed: int, path: str = "", context: int = 128, eval_fraction: float = 0.1,
                 eval_windows: int = 64, validation_fraction: float = 0.0, evaluate_on: str = "tail") -> None:
        check_positive("context", context)
        check_positive("eval_windows", eval_windows)
        check_fraction("eval_fraction", eval_fraction)
        if not 0.0 <= validation_fraction < 1.0 - eval_fraction:
            raise ConfigError(f"[task] validation_fraction = {validation_fraction} must be in [0, 1 - eval_fraction) "
                              f"= [0, {1.0 - eval_fraction:g}); lower it or eval_fraction")
        if evaluate_on not in EVALUATE_ON:
            raise ConfigError(f"[task] evaluate_on = {evaluate_on!r}; allowed: {', '.join(EVALUATE_ON)}")
        if evaluate_on == "validation" and validation_fraction == 0.0:
            raise ConfigError("[task] evaluate_on = 'validation' needs a validation block; "
                              "set validation_fraction > 0 (e.g. 0.05)")
        file = Path(path).expanduser() if path else default_corpus()
        if not file.is_file():
            raise ConfigError(f"[task] path = {str(file)!r} not found; give a UTF-8 text file")
        try:
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"[task] path = {str(file)!r} is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
        self.path = file
        self.chars, data = encode(text)
        cut = int(len(data) * (1 - eval_fraction))
        start = int(len(data) * (1 - eval_fraction - validation_fraction)) if validation_fraction else cut
        blocks = {"train": data[:start], "tail": data[cut:]}
        if validation_fraction:
            blocks["validation"] = data[start:cut]
        if min(len(d) for d in blocks.values()) <= context + 1:
            raise ConfigError(f"[task] {str(file)!r} ({len(data)} characters) is too short for context = "
                              f"{context} with eval_fraction = {eval_fraction} and validation_fraction = "
                              f"{validation_fraction}; lower context")
        self.blocks, self.evaluate_on = blocks, evaluate_on
        self.data = {"train": blocks["train"], "eval": blocks[evaluate_on]}
        self.context, self.eval_windows, self.seed = context, eval_windows, seed
        self.input_spec = {"kind": "tokens", "vocab_size": len(self.chars), "seq_len": context,
                           "output": "sequence"}
        self.n_classes = len(self.chars)
        self.train_size = None

    def _windows(self, split: str, starts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        chunk = self.data[split][starts[:, None] + torch.arange(self.context + 1)]
        return chunk[:, :-1], chunk[:, 1:]

    def _spread(self, n: int) -> torch.Tensor:
        """``n`` evenly spaced window starts in the evaluation text."""
        return torch.linspace(0, len(self.data["eval"]) - self.context - 1, n).long()

    def sample_batch(self, split: str, batch_size: int, generator: torch.Generator):
        """``batch_size`` windows at uniform random starts (drawn from ``generator``)."""
        high = len(self.data[split]) - self.context
        return self._windows(split, torch.randint(0, high, (batch_size,), generator=generator))

    def eval_batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The ``eval_windows`` fixed evaluation windows, ``batch_size`` at a time."""
        starts = self._spread(self.eval_windows)
        for i in range(0, len(starts), batch_size):
            yield self._windows("eval", starts[i:i + batch_size])

    def probe_batch(self, n: int):
        """``n`` fixed evaluation windows; the label of each is its next character."""
        x, y = self._windows("eval", self._spread(n))
        return x, y[:, -1]

    def input_grid(self):
        return None

    def token_labels(self) -> list[str]:
        """Printable names of the characters (``\\n`` for a newline)."""
        return [repr(c)[1:-1] for c in self.chars]

    def describe(self) -> dict[str, object]:
        return {"source": self.path.name, "characters": sum(len(d) for d in self.blocks.values()),
                "vocab": len(self.chars), "context": self.context, "evaluate_on": self.evaluate_on}
