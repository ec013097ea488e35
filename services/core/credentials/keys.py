"""API key format: a readable prefix per kind plus 256 random bits, stored as a SHA-256 digest."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

AGENT_KEY_PREFIX = "bw_agent_"
OPERATOR_KEY_PREFIX = "bw_op_"
_DISPLAY_CHARS = 6


@dataclass(frozen=True)
class NewKey:
    """A freshly generated key: `plaintext` is shown once, only `digest` is stored."""

    plaintext: str
    digest: bytes
    display_prefix: str


def digest_key(plaintext: str) -> bytes:
    """SHA-256 of the key; keys are random, so a fast hash is safe and lookups are O(1)."""
    return hashlib.sha256(plaintext.encode("utf-8")).digest()


def generate_key(prefix: str) -> NewKey:
    """A new key with 256 random bits after the kind's prefix."""
    plaintext = prefix + secrets.token_urlsafe(32)
    return NewKey(
        plaintext=plaintext,
        digest=digest_key(plaintext),
        display_prefix=plaintext[: len(prefix) + _DISPLAY_CHARS],
    )


def looks_like_key(token: str) -> bool:
    """Cheap shape check before touching the database."""
    return token.startswith((AGENT_KEY_PREFIX, OPERATOR_KEY_PREFIX)) and 20 <= len(token) <= 200
