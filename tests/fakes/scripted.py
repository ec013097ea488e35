"""What the fake HTTP APIs share: recorded requests, replies, and a server that answers from a
script (one behaviour per request, then a default) after the API's own request checks."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Self, TypeVar

from aiohttp import web


@dataclass(frozen=True)
class RecordedRequest:
    """One request as a fake received it; each fake adds accessors for its API's fields."""

    method: str
    path: str
    headers: Mapping[str, str]
    """Header names lower-cased."""
    raw_body: bytes
    body: dict[str, Any] | None
    """The JSON body, or None when it was not a JSON object."""


@dataclass(frozen=True)
class Reply:
    """One HTTP response."""

    status: int = 200
    body: Any = None
    """JSON-serialisable, or str/bytes sent verbatim."""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    """Seconds to wait before answering (a slow or hanging upstream, to trigger timeouts)."""
    content_type: str = "application/json"


R = TypeVar("R", bound=RecordedRequest)


class ScriptedAPI(Generic[R]):
    """A fake API on 127.0.0.1 and a free port; an async context manager.

    Subclasses set `request_type`, and implement `_reject` (what the real API refuses before
    doing any work) and `_unscripted` (the answer when neither script nor default is set).
    """

    request_type: type[R]
    max_body_bytes = 32 * 1024 * 1024

    def __init__(
        self, *, api_key: str | None = None, default: Callable[[R], Reply] | None = None
    ) -> None:
        self.api_key = api_key
        """When set, requests with another key get 401 (as the real API would)."""
        self.default = default
        self.requests: list[R] = []
        """Every request received, in order (including rejected ones)."""
        self._script: deque[Callable[[R], Reply]] = deque()
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()
        self.port = 0

    @property
    def base_url(self) -> str:
        """What to give the client as its base URL."""
        return f"http://127.0.0.1:{self.port}"

    def script(self, *behaviours: Callable[[R], Reply]) -> None:
        """Queues behaviours; each answers one request, in order."""
        self._script.extend(behaviours)

    @property
    def pending(self) -> int:
        """Scripted behaviours not used yet."""
        return len(self._script)

    async def start(self, port: int = 0) -> None:
        """Binds and serves."""
        app = web.Application(client_max_size=self.max_body_bytes)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # handler_cancellation: a request whose client gave up (timeout) stops sleeping at once.
        self._runner = web.AppRunner(
            app, handler_cancellation=True, shutdown_timeout=1.0, access_log=None
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        """Wakes slow handlers and shuts the server down."""
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _reject(self, request: R) -> Callable[[R], Reply] | None:
        raise NotImplementedError

    def _unscripted(self, request: R) -> Reply:
        raise NotImplementedError

    async def _handle(self, http: web.Request) -> web.StreamResponse:
        raw = await http.read()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        request = self.request_type(
            method=http.method,
            path=http.path,
            headers={k.lower(): v for k, v in http.headers.items()},
            raw_body=raw,
            body=parsed if isinstance(parsed, dict) else None,
        )
        self.requests.append(request)
        rejection = self._reject(request)
        if rejection is not None:
            reply = rejection(request)
        elif self._script:
            reply = self._script.popleft()(request)
        elif self.default is not None:
            reply = self.default(request)
        else:
            reply = self._unscripted(request)
        if reply.delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), reply.delay)
        return _response(reply)


def run_standalone(
    make: Callable[[float], ScriptedAPI[Any]], *, description: str, port: int
) -> None:
    """`python -m tests.fakes.<api> [--port N] [--delay S]`: serves until interrupted (manual
    runs and load tests)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, default=port)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    args = parser.parse_args()

    async def serve() -> None:
        fake = make(args.delay)
        await fake.start(args.port)
        print(f"{type(fake).__name__} on {fake.base_url} (delay {args.delay}s)", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await fake.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


def _response(reply: Reply) -> web.Response:
    if isinstance(reply.body, bytes):
        data = reply.body
    elif isinstance(reply.body, str):
        data = reply.body.encode()
    else:
        data = json.dumps(reply.body).encode()
    headers = {"content-type": reply.content_type, **reply.headers}
    return web.Response(status=reply.status, body=data, headers=headers)
