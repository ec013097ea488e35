"""Opaque, tamper-evident keyset cursors and the shared page-size rules."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from services.core import errors

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
_MAC_BYTES = 16


def page_limit(requested: int) -> int:
    """0 means the default; otherwise 1 to 100 or INVALID_ARGUMENT naming `limit`."""
    if requested == 0:
        return DEFAULT_LIMIT
    if requested < 0 or requested > MAX_LIMIT:
        raise errors.InvalidArgument.one("limit", f"must be between 1 and {MAX_LIMIT}")
    return requested


@dataclass(frozen=True)
class CursorCodec:
    """Encodes the last row's sort key with an HMAC so clients can neither read nor forge it.

    The cursor is bound to the query (`scope`: filters and sort): reusing it with other filters
    is an INVALID_ARGUMENT, not a silently wrong page.
    """

    secret: bytes

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self.secret, body, hashlib.sha256).digest()[:_MAC_BYTES]

    def encode(self, scope: str, key: list[Any]) -> str:
        """A cursor pointing after the row whose sort key is `key`."""
        body = json.dumps({"s": scope, "k": key}, separators=(",", ":")).encode()
        token = body + self._mac(body)
        return base64.urlsafe_b64encode(token).decode().rstrip("=")

    def decode(self, scope: str, cursor: str) -> list[Any] | None:
        """The sort key of a cursor; None for an empty cursor (first page)."""
        if not cursor:
            return None
        invalid = errors.InvalidArgument.one(
            "cursor", "is not a cursor returned for this query", reason="CURSOR_INVALID"
        )
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except (ValueError, TypeError):
            raise invalid from None
        body, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        if len(raw) <= _MAC_BYTES or not hmac.compare_digest(mac, self._mac(body)):
            raise invalid
        data = json.loads(body)
        if data.get("s") != scope or not isinstance(data.get("k"), list):
            raise invalid
        return list(data["k"])
