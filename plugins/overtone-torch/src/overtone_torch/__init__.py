"""overtone-torch: the torch training engine and baseline components for overtone.

Importing this package does not import torch (``overtone plugins`` lists it without torch);
:func:`load_run` imports it when called.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__version__ = "0.1.0"


def load_run(run_dir: str | Path, *, registry: Any = None, device: Any = "cpu") -> Any:
    """A run's task, model and loss rebuilt from its ``config.toml`` and ``checkpoint.pt``.

    Returns an ``overtone_torch.load.LoadedRun`` with ``config``, ``task``, ``model``,
    ``loss``, ``net`` (model and loss in one module, eval mode), ``step`` and
    ``evaluate(split)``; ``registry`` defaults to the installed plugins.
    """
    from overtone_torch.load import load_run as load

    return load(run_dir, registry=registry, device=device)
