"""Keyset pages: opaque, tamper-evident cursors, the page-size rules and the one paginator."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from services.core import errors

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
_MAC_BYTES = 16

T = TypeVar("T")


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


@dataclass(frozen=True)
class Page(Generic[T]):
    """A page of items and the cursor after it."""

    items: list[T]
    next_cursor: str
    """Empty on the last page."""
    has_more: bool
    limit: int
    """The page size used (the default when the request sent 0)."""
    renderings: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """Memo for the transport: a page shared by many requests (a cached list page) renders
    once per audience instead of once per request."""


async def paginate(
    fetch: Callable[[list[Any] | None, int], Awaitable[Sequence[T]]],
    *,
    cursors: CursorCodec,
    scope: str,
    cursor: str,
    limit: int,
    key: Callable[[T], list[Any]],
) -> Page[T]:
    """One keyset page: `fetch(after, n)` returns up to n rows after the decoded sort key
    (None on the first page) in page order; `key(row)` is a row's sort key as JSON values.

    Asks for one row more than the page holds, to know whether another page follows without a
    count. `scope` binds the cursor to the query (filters and sort order).
    """
    size = page_limit(limit)
    after = cursors.decode(scope, cursor)
    rows = await fetch(after, size + 1)
    has_more = len(rows) > size
    items = list(rows[:size])
    next_cursor = cursors.encode(scope, key(items[-1])) if has_more else ""
    return Page(items=items, next_cursor=next_cursor, has_more=has_more, limit=size)
