"""overtone-focus: the FOCUS and Signum optimizers."""

from overtone_focus.focus import FOCUS
from overtone_focus.signum import Signum

__version__ = "0.1.0"
__all__ = ["FOCUS", "Signum"]
