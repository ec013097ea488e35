"""The wall clock the domain functions read (injected through their deps, so tests move time)."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """The current time, timezone-aware."""
    return datetime.now(UTC)
