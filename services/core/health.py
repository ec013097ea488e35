"""Dependency probes and the health status they drive (grpc.health.v1 and readiness)."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from asyncpg.exceptions import InvalidAuthorizationSpecificationError, InvalidPasswordError
from grpc_health.v1 import health, health_pb2
from redis.asyncio import Redis
from redis.exceptions import AuthenticationError as RedisAuthenticationError
from redis.exceptions import ResponseError as RedisResponseError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.core.logging import get_logger

log = get_logger(__name__)
_PROBE_TIMEOUT_SECONDS = 1.0


@dataclass(frozen=True)
class Check:
    """One dependency's probe result."""

    name: str
    ok: bool
    latency_ms: float
    error: str = ""


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and what it wraps (SQLAlchemy keeps the driver's error in `orig`)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        wrapped = getattr(current, "orig", None)
        current = wrapped if isinstance(wrapped, BaseException) else current.__cause__
    return chain


def _describe(exc: BaseException) -> str:
    # Short and non-sensitive: never the exception text, which may hold hosts or credentials.
    for cause in _causes(exc):
        if isinstance(cause, (TimeoutError, asyncio.TimeoutError)):
            return "timeout"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, ssl.SSLError):
            return "TLS failed"
        if isinstance(cause, (RedisAuthenticationError, InvalidPasswordError)) or (
            isinstance(cause, (RedisResponseError, InvalidAuthorizationSpecificationError))
            and "auth" in str(cause).lower()
        ):
            return "authentication failed"
    return "unreachable"


class DependencyProbe:
    """Checks PostgreSQL and Redis with a short timeout each, concurrently."""

    def __init__(self, *, engine: AsyncEngine, redis: Redis) -> None:
        self._engine = engine
        self._redis = redis
        self._database_down = False

    async def _database(self) -> None:
        async with self._engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def _redis_ping(self) -> None:
        await self._redis.ping()

    async def _timed(self, name: str, probe: Callable[[], Awaitable[None]]) -> Check:
        started = time.perf_counter()
        try:
            # The coroutine is made here, in the running task: made by the caller, it would
            # never be awaited when the check is cancelled before this task starts (shutdown).
            await asyncio.wait_for(probe(), _PROBE_TIMEOUT_SECONDS)
        except Exception as exc:  # every failure is a "down" result, never a crash
            return Check(name, False, (time.perf_counter() - started) * 1000, _describe(exc))
        return Check(name, True, (time.perf_counter() - started) * 1000)

    async def check(self) -> list[Check]:
        """Probes every dependency now; drops the connection pool when the database returns."""
        checks = list(
            await asyncio.gather(
                self._timed("database", self._database),
                self._timed("redis", self._redis_ping),
            )
        )
        database_ok = checks[0].ok
        if database_ok and self._database_down:
            # Pooled connections may predate the outage: start afresh rather than fail on them.
            await self._engine.dispose()
            log.info("database_recovered")
        self._database_down = not database_ok
        return checks


class HealthMonitor:
    """Keeps grpc.health.v1 statuses in line with the dependencies, and NOT_SERVING on shutdown."""

    def __init__(
        self,
        *,
        servicer: health.HealthServicer,
        probe: DependencyProbe,
        service_names: list[str],
        interval_seconds: float,
    ) -> None:
        self._servicer = servicer
        self._probe = probe
        self._names = ["", *service_names]
        self._interval = interval_seconds
        self._task: asyncio.Task[None] | None = None
        self._serving: bool | None = None
        self.shutting_down = False

    async def _set(self, serving: bool) -> None:
        if serving == self._serving:
            return
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in self._names:
            await self._servicer.set(name, status)  # type: ignore[func-returns-value,misc]
        if self._serving is not None:
            log.warning("health_changed", serving=serving)
        self._serving = serving

    async def refresh(self) -> list[Check]:
        """Probes once and updates the statuses."""
        checks = await self._probe.check()
        if not self.shutting_down:
            await self._set(all(c.ok for c in checks))
        return checks

    async def _loop(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception:  # the monitor must outlive any single failed probe
                log.exception("health_probe_failed")
            await asyncio.sleep(self._interval)

    async def start(self) -> None:
        """Sets the first status from a real probe, then keeps probing in the background."""
        await self.refresh()
        self._task = asyncio.create_task(self._loop(), name="health-monitor")

    async def enter_shutdown(self) -> None:
        """NOT_SERVING for good, so Envoy stops sending new requests before the drain."""
        self.shutting_down = True
        if self._task is not None:
            self._task.cancel()
        self._serving = None
        await self._set(False)
        await self._servicer.enter_graceful_shutdown()  # type: ignore[func-returns-value,misc]
