"""Errors meant for people: each says what was wrong, where, and what would be right."""

from __future__ import annotations


class OvertoneError(Exception):
    """Base class of every error overtone reports to a user as one line (CLI exit code 2)."""


class UnknownComponentError(OvertoneError, LookupError):
    """A component name that no loaded plugin registers."""


class DuplicateComponentError(OvertoneError, LookupError):
    """A short component name registered by two or more distributions."""


class ComponentUnavailableError(OvertoneError, ImportError):
    """A component whose lazy factory could not be imported (often a missing dependency)."""


class PluginError(OvertoneError):
    """A plugin that failed to import or returned something that is not a Component."""


class ConfigError(OvertoneError, ValueError):
    """A config file or override that is missing, malformed or invalid."""


class DatasetError(OvertoneError, ValueError):
    """A dataset that is missing, unreadable, or lacks what a component needs."""


class OvertoneWarning(UserWarning):
    """Something a user should know that does not stop the work (e.g. a shadowed name)."""
