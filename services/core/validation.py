"""Field validation shared by every service: collect violations, check text and URLs."""

from __future__ import annotations

from urllib.parse import urlsplit

from services.core.errors import FieldViolation, InvalidArgument


class Violations:
    """Collects every bad field of one request, then raises them together."""

    def __init__(self) -> None:
        self.items: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        """Records one violation."""
        self.items.append(FieldViolation(field, description))

    def raise_if_any(self) -> None:
        """Raises InvalidArgument listing every violation, if there are any."""
        if self.items:
            raise InvalidArgument(self.items)


def check_text(value: str, out: Violations, field: str, maximum: int) -> None:
    """At most `maximum` characters and no NUL (PostgreSQL text cannot hold it)."""
    if len(value) > maximum:
        out.add(field, f"must be at most {maximum} characters")
    elif "\x00" in value:
        out.add(field, "must not contain NUL characters")


def check_required_text(
    value: str, out: Violations, field: str, minimum: int, maximum: int
) -> None:
    """Between `minimum` and `maximum` characters once trimmed, and no NUL."""
    length = len(value.strip())
    if length < minimum or len(value) > maximum:
        out.add(field, f"must be {minimum} to {maximum} characters")
    elif "\x00" in value:
        out.add(field, "must not contain NUL characters")


def check_url(value: str, out: Violations, field: str, maximum: int = 2000) -> None:
    """An absolute http(s) URL with a host."""
    if len(value) > maximum:
        out.add(field, f"must be at most {maximum} characters")
        return
    try:
        parts = urlsplit(value)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        out.add(field, "must be an http(s) URL")
