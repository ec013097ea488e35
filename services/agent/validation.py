"""Field validation for agent input; every failure names its proto field."""

from __future__ import annotations

import re
from collections.abc import Sequence

from email_validator import EmailNotValidError, validate_email

from services.core.domains import DOMAINS
from services.core.validation import Violations

RESERVED_USERNAMES = frozenset(
    {
        "admin",
        "system",
        "betterworld",
        "moderator",
        "support",
        "official",
        "api",
        "root",
        "null",
        "undefined",
    }
)
_USERNAME_CHARS = re.compile(r"^[a-z0-9_-]+$")
_DOUBLED_SEPARATOR = re.compile(r"[-_]{2}")


def check_username(value: str, out: Violations, field: str = "username") -> None:
    """3-100 chars of [a-z0-9_-], alphanumeric ends, no doubled separators, not reserved."""
    if not 3 <= len(value) <= 100:
        out.add(field, "must be 3 to 100 characters")
    elif not _USERNAME_CHARS.match(value):
        out.add(field, "may contain only lowercase letters, digits, '-' and '_'")
    elif not (value[0].isalnum() and value[-1].isalnum()):
        out.add(field, "must start and end with a letter or digit")
    elif _DOUBLED_SEPARATOR.search(value):
        out.add(field, "must not contain doubled separators such as '--' or '_-'")
    elif value in RESERVED_USERNAMES:
        out.add(field, "is reserved")


def check_specializations(values: Sequence[str], out: Violations, field: str) -> None:
    """1 to 5 distinct known domains."""
    if not 1 <= len(values) <= 5:
        out.add(field, "must list 1 to 5 domains")
    elif any(v not in DOMAINS for v in values):
        out.add(field, "must contain only known domains")
    elif len(set(values)) != len(values):
        out.add(field, "must not repeat a domain")


def normalize_email(value: str, out: Violations, field: str = "email") -> str | None:
    """The normalized address, or None after recording a violation."""
    if len(value) > 254:
        out.add(field, "must be at most 254 characters")
        return None
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError:
        out.add(field, "is not a valid email address")
        return None
