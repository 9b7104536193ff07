"""overtone-focus: the FOCUS and Signum optimizers.

``from overtone_focus import FOCUS, Signum`` works; torch is imported only then, so that
listing plugins (which imports ``overtone_focus.plugin``) never imports torch.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["FOCUS", "Signum"]


def __getattr__(name: str):
    if name == "FOCUS":
        from overtone_focus.focus import FOCUS

        return FOCUS
    if name == "Signum":
        from overtone_focus.signum import Signum

        return Signum
    raise AttributeError(f"module 'overtone_focus' has no attribute {name!r}")
