"""A local fake of Sentry's ingest endpoint (`POST /api/<project>/envelope/`) for the real SDK.

It checks what Sentry checks before accepting an envelope (the project in the path, the DSN's
public key in `X-Sentry-Auth`), records every request, and decodes the envelopes so tests can
read the events the SDK sent:

    async with FakeSentryIngest() as ingest:
        settings = settings.model_copy(update={"sentry_dsn": ingest.dsn})
        ...
        events = await ingest.wait_for_events(1)
"""

from __future__ import annotations

import asyncio
import gzip
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sentry_sdk.envelope import Envelope

from tests.fakes.scripted import RecordedRequest as BaseRecordedRequest
from tests.fakes.scripted import Reply, ScriptedAPI

PUBLIC_KEY = "publickey0123456789"
PROJECT_ID = "1"


@dataclass(frozen=True)
class RecordedRequest(BaseRecordedRequest):
    """One request as the fake received it."""

    @property
    def envelope(self) -> Envelope:
        """The decoded envelope (gzip as the SDK sends it, or plain)."""
        raw = self.raw_body
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        return Envelope.deserialize(raw)

    @property
    def items(self) -> list[tuple[str, dict[str, Any]]]:
        """(item type, JSON payload) of each item of the envelope."""
        found = []
        for item in self.envelope.items:
            payload = item.payload.json
            if item.type is not None and isinstance(payload, dict):
                found.append((item.type, payload))
        return found


def _accepted(request: RecordedRequest) -> Reply:
    return Reply(200, {"id": uuid.uuid4().hex})


def _unauthorized(detail: str) -> Callable[[RecordedRequest], Reply]:
    return lambda request: Reply(401, {"detail": detail})


class FakeSentryIngest(ScriptedAPI[RecordedRequest]):
    """Accepts envelopes for project 1 with the public key `PUBLIC_KEY`."""

    request_type = RecordedRequest

    def __init__(self) -> None:
        super().__init__(default=_accepted)

    @property
    def dsn(self) -> str:
        """The DSN that points the SDK at this fake."""
        return f"http://{PUBLIC_KEY}@127.0.0.1:{self.port}/{PROJECT_ID}"

    def events(self) -> list[dict[str, Any]]:
        """Every error event received (transactions, sessions and client reports left out)."""
        return [
            payload
            for request in self.requests
            if request.path == f"/api/{PROJECT_ID}/envelope/"
            for kind, payload in request.items
            if kind == "event"
        ]

    def item_types(self) -> list[str]:
        """The type of every envelope item received, in order."""
        return [kind for request in self.requests for kind, _ in request.items]

    async def wait_for_events(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The events once at least `count` have arrived (fails after `timeout` seconds)."""
        deadline = time.monotonic() + timeout
        while len(self.events()) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.events())} events arrived, expected {count}")
            await asyncio.sleep(0.02)
        return self.events()

    def _reject(self, request: RecordedRequest) -> Callable[[RecordedRequest], Reply] | None:
        if request.method != "POST" or request.path != f"/api/{PROJECT_ID}/envelope/":
            return lambda r: Reply(404, {"detail": "unknown project or endpoint"})
        auth = request.headers.get("x-sentry-auth", "")
        if f"sentry_key={PUBLIC_KEY}" not in auth:
            return _unauthorized("missing or wrong sentry_key")
        return None

    def _unscripted(self, request: RecordedRequest) -> Reply:
        return _accepted(request)
