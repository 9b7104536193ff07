"""Helpers shared by the core tests: fake entry points and plugin modules, and a CLI runner.

A module of its own (not ``conftest``) so that importing it by name never picks up another
suite's ``conftest`` when several suites run in one pytest session.
"""

from __future__ import annotations

import os
import subprocess
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path

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
