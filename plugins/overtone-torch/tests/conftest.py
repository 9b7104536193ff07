import os

import pytest

os.environ.setdefault("OVERTONE_PROGRESS", "0")


@pytest.fixture(scope="session")
def registry():
    """The registry of installed plugins (overtone-torch must be installed)."""
    from overtone.registry import registry as build

    reg = build(refresh=True)
    assert "torch" in reg.names("engine"), "pip install -e plugins/overtone-torch"
    return reg
