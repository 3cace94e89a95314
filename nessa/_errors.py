"""The CLI's user-facing error (its own module so every command module can raise it without
importing the dispatcher that loads them)."""

from __future__ import annotations

__all__ = ["CliError"]


class CliError(Exception):
    """A user-facing error: printed as ``nessa: error: <message>``, exit status 2."""
