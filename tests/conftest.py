"""Shared fixtures: registries holding only chosen plugins, and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HERE = Path(__file__).parent
EXAMPLE_SRC = HERE / "thirdparty" / "overtone-example" / "src"
if str(EXAMPLE_SRC) not in sys.path:
    sys.path.insert(0, str(EXAMPLE_SRC))


@dataclass
class FakeDist:
    name: str
    version: str = "1.0"


@dataclass
class FakeEntryPoint:
    """Stands in for importlib.metadata.EntryPoint: name, value, dist, load()."""

    name: str
    module: types.ModuleType | None
    dist: FakeDist = field(default_factory=lambda: FakeDist("fake"))
    error: Exception | None = None

    @property
    def value(self) -> str:
        return f"{self.dist.name.replace('-', '_')}.plugin"

    def load(self):
        if self.error is not None:
            raise self.error
        return self.module


def make_plugin(name: str, **hooks) -> types.ModuleType:
    """A plugin module whose hook implementations return the given lists of Components."""
    from overtone import hookimpl

    module = types.ModuleType(name)
    for hook_name, value in hooks.items():
        def implementation(value=value):
            if isinstance(value, Exception):
                raise value
            return value

        implementation.__name__ = hook_name
        setattr(module, hook_name, hookimpl(implementation))
    return module


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


def cli_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        OVERTONE_PLUGINS="overtone_example.plugin",
        OVERTONE_LOAD_PLUGINS="",
        PYTHONPATH=os.pathsep.join([str(EXAMPLE_SRC), env.get("PYTHONPATH", "")]),
        OVERTONE_PROGRESS="0",
    )
    env.update(extra)
    return env


def run_cli(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "overtone", *args],
        capture_output=True, text=True, cwd=cwd, env=cli_env(**env), timeout=300,
    )
