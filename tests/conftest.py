"""Shared fixtures: registries holding only chosen plugins (helpers in overtone_core_testing)."""

from __future__ import annotations

import pytest
from overtone_core_testing import FakeEntryPoint  # noqa: F401  (also puts the example plugin on sys.path)


@pytest.fixture
def fake_entry_points(monkeypatch):
    """Replace the entry-point scan with a list the test controls."""
    points: list[FakeEntryPoint] = []
    monkeypatch.setattr("overtone.plugins.entry_points", lambda group: list(points))
    return points


@pytest.fixture
def example_registry():
    """A registry holding only the example third-party plugin."""
    from overtone.testing import registry_for

    return registry_for("overtone_example.plugin")


@pytest.fixture(autouse=True)
def fresh_global_registry():
    """Forget the cached ``overtone.registry()`` after each core test: tests here load it under a
    restricted ``OVERTONE_PLUGINS``, and a later suite in the same session must not inherit that."""
    import sys

    yield
    sys.modules["overtone.registry"]._REGISTRY = None  # the module: `overtone.registry` is the function
