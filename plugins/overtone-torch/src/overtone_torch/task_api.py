"""The interface between tasks and the engine (what a ``task`` factory returns).

A task factory is called as ``factory(*, seed, **params)`` and returns an object with:

- ``input_spec: dict`` passed to the model factory. Keys:
  ``kind`` = ``"tokens"`` (integer inputs; ``vocab_size``, ``seq_len``) or ``"vector"``
  (float inputs; ``dim``), and ``output`` = ``"pooled"`` (one feature vector per example,
  features ``(B, d)``) or ``"sequence"`` (features per position ``(B, T, d)``, for language
  modelling).
- ``n_classes: int``: number of output classes (vocabulary size for language modelling).
- ``train_size: int | None``: number of training examples (``None`` for sampled windows).
- ``sample_batch(split, batch_size, generator) -> (x, y)``: a random batch drawn with the
  given ``torch.Generator`` (so the data position is part of the checkpointed RNG state);
  ``split`` is ``"train"`` or ``"eval"``; ``y`` is ``(B,)`` or ``(B, T)`` int64.
- ``eval_batches(batch_size) -> Iterator[(x, y)]``: the deterministic evaluation set.
- ``probe_batch(n) -> (x, y)``: a fixed batch for hidden-representation probes.
- ``input_grid() -> (x, coords) | None``: for modular tasks, every input pair with
  ``coords = {"a": [...], "b": [...]}`` so outputs probe as ``(a, b, class)``.
- ``token_labels() -> list[str] | None``: names of input tokens for the ``token`` coord.
- ``describe() -> dict``: attrs recorded with the metrics (e.g. ``{"p": 97, "op": "+"}``).
"""
