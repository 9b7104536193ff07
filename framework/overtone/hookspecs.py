"""The hooks a plugin implements; each returns an iterable of :class:`overtone.Component`."""

from __future__ import annotations

from collections.abc import Iterable

import pluggy

from overtone.component import Component

hookspec = pluggy.HookspecMarker("overtone")
hookimpl = pluggy.HookimplMarker("overtone")


@hookspec
def overtone_losses() -> Iterable[Component]:
    """Losses: ``factory(*, d_in, n_classes, **params)`` -> module owning head and criterion."""


@hookspec
def overtone_optimizers() -> Iterable[Component]:
    """Optimizers: ``factory(params, **hparams)`` -> ``torch.optim.Optimizer``."""


@hookspec
def overtone_models() -> Iterable[Component]:
    """Models: ``factory(*, input_spec, d_out, **params)`` -> module mapping inputs to features."""


@hookspec
def overtone_analyzers() -> Iterable[Component]:
    """Analyzers: ``factory(**params)`` -> callable ``(xr.Dataset) -> xr.Dataset``."""


@hookspec
def overtone_signal_processors() -> Iterable[Component]:
    """Signal processors: ``factory(**params)`` -> callable ``(xr.Dataset) -> xr.Dataset``."""


@hookspec
def overtone_tasks() -> Iterable[Component]:
    """Tasks: ``factory(*, seed, **params)`` -> data source with splits and an input spec."""


@hookspec
def overtone_engines() -> Iterable[Component]:
    """Engines: ``factory()`` -> object with ``resolve(config, source)`` and ``run(...)``."""


@hookspec
def overtone_readers() -> Iterable[Component]:
    """Readers: ``factory(path, **params)`` -> ``xr.Dataset`` for files with given suffixes."""
