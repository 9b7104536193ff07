"""overtone-torch: the torch training engine and baseline components for overtone."""

__version__ = "0.1.0"
