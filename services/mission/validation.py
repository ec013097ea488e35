"""Every check of the mission service's input, in one place; each failure names its proto field."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

from services.core.validation import Violations, check_text
from services.mission.model import NewHuman

PASSWORD_MIN, PASSWORD_MAX = 8, 128


def normalized_email(value: str, out: Violations, field: str = "email") -> str:
    """The address with its domain in lower case ("" after recording a violation)."""
    if not 3 <= len(value) <= 254:
        out.add(field, "must be 3 to 254 characters")
        return ""
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError:
        out.add(field, "is not a valid email address")
        return ""


def check_password(value: str, out: Violations) -> None:
    """8 to 128 characters with a lower-case letter, an upper-case letter and a digit."""
    if not PASSWORD_MIN <= len(value) <= PASSWORD_MAX:
        out.add("password", f"must be {PASSWORD_MIN} to {PASSWORD_MAX} characters")
    elif not (
        any(c.islower() for c in value)
        and any(c.isupper() for c in value)
        and any(c.isdigit() for c in value)
    ):
        out.add("password", "must contain a lower-case letter, an upper-case letter and a digit")
    elif "\x00" in value:
        out.add("password", "must not contain NUL characters")


def valid_registration(email: str, password: str, display_name: str) -> NewHuman:
    """A registration's fields checked, all bad ones reported at once."""
    out = Violations()
    normalized = normalized_email(email, out)
    check_password(password, out)
    name = display_name.strip()
    if not 2 <= len(name) <= 200:
        out.add("display_name", "must be 2 to 200 characters")
    else:
        check_text(name, out, "display_name", 200)
    out.raise_if_any()
    return NewHuman(email=normalized, password=password, display_name=name)


def valid_email(email: str) -> str:
    """The normalized email, or INVALID_ARGUMENT naming `email`."""
    out = Violations()
    normalized = normalized_email(email, out)
    out.raise_if_any()
    return normalized


def valid_verification(email: str, code: str) -> str:
    """The normalized email of a VerifyEmail request whose code is 6 digits."""
    out = Violations()
    normalized = normalized_email(email, out)
    if len(code) != 6 or not code.isdigit():
        out.add("code", "must be 6 digits")
    out.raise_if_any()
    return normalized


def valid_login(email: str, password: str) -> str:
    """The normalized email of a Login request with a password."""
    out = Violations()
    normalized = normalized_email(email, out)
    if not password:
        out.add("password", "is required")
    elif len(password) > PASSWORD_MAX:
        out.add("password", f"must be at most {PASSWORD_MAX} characters")
    out.raise_if_any()
    return normalized


def valid_reason(reason: str) -> str:
    """An operator's reason: at most 500 characters."""
    out = Violations()
    check_text(reason, out, "reason", 500)
    out.raise_if_any()
    return reason.strip()
