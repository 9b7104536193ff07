"""A tiny third-party overtone plugin: a NumPy regression engine, an analyzer, a processor."""

__version__ = "1.0.0"
