"""Ed25519 signing of heartbeat instructions, with key ids so keys can rotate."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALGORITHM = "Ed25519"


def canonical_json(value: Any) -> bytes:
    """The exact bytes that get signed: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def key_id(public_key: Ed25519PublicKey) -> str:
    """A stable id: the first 16 hex digits of SHA-256 of the raw public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_bytes(public_key: Ed25519PublicKey) -> bytes:
    """The raw 32-byte public key."""
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def load_private_key(text: str) -> Ed25519PrivateKey:
    """A key from PEM (PKCS#8) or base64 of the 32-byte seed; ValueError when neither."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_private_key(text.encode(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("the PEM key is not an Ed25519 key")
        return key
    seed = base64.b64decode(text, validate=True)
    if len(seed) != 32:
        raise ValueError("a base64 Ed25519 key must decode to 32 bytes")
    return Ed25519PrivateKey.from_private_bytes(seed)


def load_or_create_dev_key(path: Path) -> Ed25519PrivateKey:
    """The persisted development key at `path`, generated (mode 0600) on first use.

    The processes of a group (`serve --processes N`) start together and may all find no key:
    each writes a whole candidate beside it and links it into place, which only the first one
    manages; the others use the key that one wrote, never a half-written file.
    """
    if path.exists():
        return load_private_key(path.read_text())
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, candidate = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        try:
            os.link(candidate, path)
        except FileExistsError:
            return load_private_key(path.read_text())
    finally:
        os.unlink(candidate)
    return key


@dataclass(frozen=True)
class PublishedKey:
    """A verification key as published to agents."""

    key_id: str
    public_key: bytes
    status: str


@dataclass(frozen=True)
class SignedPayload:
    """Payload bytes, their signature and the signing key's id."""

    payload: bytes
    signature: bytes
    key_id: str


class HeartbeatSigner:
    """Signs with the current key; publishes the current and (during rotation) previous key."""

    def __init__(
        self, current: Ed25519PrivateKey, previous: Ed25519PrivateKey | None = None
    ) -> None:
        self._current = current
        self._current_id = key_id(current.public_key())
        self._previous = previous

    def sign(self, document: dict[str, Any]) -> SignedPayload:
        """Serializes `document` canonically and signs exactly those bytes."""
        payload = canonical_json(document)
        return SignedPayload(payload, self._current.sign(payload), self._current_id)

    def published_keys(self) -> list[PublishedKey]:
        """Current key first, then the previous one if any."""
        keys = [PublishedKey(self._current_id, public_bytes(self._current.public_key()), "current")]
        if self._previous is not None:
            pub = self._previous.public_key()
            keys.append(PublishedKey(key_id(pub), public_bytes(pub), "previous"))
        return keys
