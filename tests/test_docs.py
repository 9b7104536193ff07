"""Every hook is documented with its exact signature; every CLI command is in the user guide."""

from __future__ import annotations

import inspect
from pathlib import Path

from overtone import hookspecs
from overtone.cli import build_parser
from overtone.component import KINDS

DOCS = Path(__file__).parents[1] / "docs"


def test_every_hook_documented_with_its_signature():
    text = (DOCS / "hooks.md").read_text()
    for hook in KINDS.values():
        signature = inspect.signature(getattr(hookspecs, hook))
        assert f"## {hook}" in text
        assert f"def {hook}{signature}: ...".replace("'", "") in text, hook


def test_every_command_in_user_guide():
    text = (DOCS / "user-guide.md").read_text()
    commands = build_parser()._subparsers._group_actions[0].choices
    for command in commands:
        assert f"`overtone {command}" in text, command
