"""The errors of backup work."""

from __future__ import annotations


class BackupError(RuntimeError):
    """A backup could not be made, stored, found, verified or restored."""


class BackupMissing(BackupError):
    """The store has no file of that name."""
