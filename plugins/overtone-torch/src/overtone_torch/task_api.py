"""The contract between tasks and the torch engine: what a ``task`` factory returns.

A task factory is called as ``factory(*, seed, **params)`` and returns an object satisfying
:class:`Task` (structurally: no base class is needed; ``tasks.base.TensorTask`` is one for
data held in memory). The engine checks the product against :data:`MEMBERS` where it enters
(``build.create_task``), so a task lacking a member fails validation with one line naming it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal, Protocol, TypedDict, runtime_checkable

import torch

Batch = tuple[torch.Tensor, torch.Tensor]


class InputSpec(TypedDict, total=False):
    """What a model is told about its inputs (passed to the model factory as ``input_spec``).

    ``kind = "tokens"``: integer inputs ``(B, seq_len)`` with ids below ``vocab_size``;
    ``kind = "vector"``: float inputs ``(B, dim)``. ``output = "pooled"``: one feature
    vector per example, features ``(B, d)``; ``"sequence"``: features per position
    ``(B, T, d)`` (language modelling).
    """

    kind: Literal["tokens", "vector"]
    output: Literal["pooled", "sequence"]
    vocab_size: int
    seq_len: int
    dim: int


@runtime_checkable
class Task(Protocol):
    """A data source with train and eval splits, deterministic under the factory's ``seed``."""

    #: Passed to the model factory (see :class:`InputSpec`).
    input_spec: InputSpec
    #: Number of output classes (the vocabulary size for language modelling); ``None`` for a
    #: regression task, which sets ``target = "regression"`` and an int ``n_outputs`` instead and
    #: gives float targets ``(B,)`` or ``(B, n_outputs)`` (optional attributes, read with getattr).
    n_classes: int | None
    #: Number of training examples; ``None`` for sampled windows (no fixed set).
    train_size: int | None

    def sample_batch(self, split: str, batch_size: int, generator: torch.Generator) -> Batch:
        """A random batch ``(x, y)`` of ``split`` (``"train"`` or ``"eval"``) drawn with ``generator``
        (so the data position is part of the checkpointed RNG state); ``y`` is ``(B,)`` or
        ``(B, T)`` int64, ``-100`` for an ignored target."""
        ...

    def eval_batches(self, batch_size: int) -> Iterator[Batch]:
        """The deterministic evaluation set, ``batch_size`` examples at a time."""
        ...

    def probe_batch(self, n: int) -> Batch:
        """A fixed batch of ``n`` examples for hidden-representation probes (``y`` one class each)."""
        ...

    def input_grid(self) -> tuple[torch.Tensor, dict[str, list[Any]]] | None:
        """Every input of a finite grid with its coords (modular tasks: ``{"a": [...], "b": [...]}``,
        so outputs probe as ``(a, b, class)``), or ``None``."""
        ...

    def token_labels(self) -> list[str] | None:
        """Names of the input tokens (the ``token_label`` coord of embedding probes), or ``None``."""
        ...

    def describe(self) -> dict[str, Any]:
        """Attributes recorded with the metrics and probes, e.g. ``{"p": 97, "op": "+"}``."""
        ...


#: Every member of :class:`Task`, in the order the engine checks them.
MEMBERS = ("input_spec", "n_classes", "train_size", "sample_batch", "eval_batches", "probe_batch",
           "input_grid", "token_labels", "describe")


def missing_members(task: Any) -> list[str]:
    """The members of :class:`Task` that ``task`` lacks (its methods must be callable)."""
    attributes = ("input_spec", "n_classes", "train_size")
    return [name for name in MEMBERS if not hasattr(task, name)
            or (name not in attributes and not callable(getattr(task, name)))]
