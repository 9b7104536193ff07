"""When to show a progress bar: one rule for every command."""

from __future__ import annotations

import os
import sys


def progress_enabled(requested: bool = True) -> bool:
    """Whether a progress bar is shown: ``requested``, unless ``OVERTONE_PROGRESS=0``.

    ``OVERTONE_PROGRESS=1`` shows it even when stderr is not a terminal; otherwise a bar is
    shown only on a terminal (a log file gets no carriage-return lines).
    """
    setting = os.environ.get("OVERTONE_PROGRESS")
    if not requested or setting == "0":
        return False
    return setting == "1" or sys.stderr.isatty()
