"""overtone-skills: toy models of skill learning (arXiv 2501.12391) and skill-onset analysis."""

__version__ = "0.1.0"
