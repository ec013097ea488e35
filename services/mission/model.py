"""Mission domain records (plain data, no transport types)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class HumanRecord:
    """A human account as stored (the password hash never leaves the store)."""

    id: str
    email: str
    display_name: str
    email_verified: bool
    is_active: bool
    created_at: datetime


@dataclass(frozen=True)
class NewHuman:
    """A validated registration."""

    email: str
    """Normalized (the domain in lower case)."""
    password: str
    display_name: str


@dataclass(frozen=True)
class LoginState:
    """A human and the hash their password is checked against."""

    human: HumanRecord
    password_hash: str


@dataclass(frozen=True)
class VerificationCode:
    """A human's newest unused verification code (its digest only)."""

    id: str
    digest: bytes
    expires_at: datetime
    failed_attempts: int


@dataclass(frozen=True)
class Session:
    """A login's tokens, as the client receives them."""

    access_token: str
    refresh_token: str
    expires_in: int
    human: HumanRecord
