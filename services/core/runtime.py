"""The composition root's product: clients built once per process and passed down."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import grpc
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from services.core.credentials.authenticator import Authenticator
from services.core.credentials.tokens import TokenSigner
from services.core.db import create_engine
from services.core.metrics import watch_pool
from services.core.queues import EvaluationQueue
from services.core.ratelimit import RateLimiter
from services.core.redis import create_redis
from services.core.settings import Settings


def internal_channel(target: str) -> grpc.aio.Channel:
    """A channel to a service's internal API that spreads calls over every address the target
    names (the processes of a group, see `services.core.process_ports`)."""
    return grpc.aio.insecure_channel(target, options=(("grpc.lb_policy_name", "round_robin"),))


@dataclass
class Runtime:
    """Settings and the shared clients of one process."""

    settings: Settings
    engine: AsyncEngine
    redis: Redis
    authenticator: Authenticator
    limiter: RateLimiter
    evaluation_queue: EvaluationQueue
    stopping: asyncio.Event = field(default_factory=asyncio.Event, init=False, repr=False)
    """Set when the server starts its graceful stop: long-lived streams end at once, so their
    clients reconnect elsewhere instead of holding the shutdown for the whole grace."""
    _channels: dict[str, grpc.aio.Channel] = field(default_factory=dict, init=False, repr=False)
    _on_close: list[Callable[[], Awaitable[None]]] = field(
        default_factory=list, init=False, repr=False
    )

    def on_close(self, close: Callable[[], Awaitable[None]]) -> None:
        """Registers a client a service built from this runtime, closed with it (in reverse)."""
        self._on_close.append(close)

    def channel(self, target: str) -> grpc.aio.Channel:
        """The channel to another service's internal API at `target` (one per target in the
        process, made on first use and closed with the runtime)."""
        if target not in self._channels:
            self._channels[target] = internal_channel(target)
        return self._channels[target]

    async def close(self) -> None:
        """Charges the rate limits still owed, then closes the internal channels, the database
        pool, the queues and the Redis connections."""
        await self.limiter.close()
        for channel in self._channels.values():
            await channel.close(None)
        await self.evaluation_queue.close()
        for close in reversed(self._on_close):
            await close()
        await self.engine.dispose()
        await self.redis.aclose()


def token_signer(settings: Settings) -> TokenSigner:
    """Signs and verifies humans' tokens with JWT_SECRET (and JWT_SECRET_PREVIOUS)."""
    previous = settings.jwt_secret_previous
    return TokenSigner(
        settings.jwt_secret.get_secret_value(),
        previous.get_secret_value() if previous else None,
    )


def build_runtime(settings: Settings) -> Runtime:
    """Builds the clients; nothing connects until first use."""
    engine = create_engine(settings)
    watch_pool(engine.pool)
    redis = create_redis(settings)
    return Runtime(
        settings=settings,
        engine=engine,
        redis=redis,
        authenticator=Authenticator(
            engine=engine,
            redis=redis,
            internal_token=settings.internal_service_token.get_secret_value(),
            cache_ttl_seconds=settings.auth_cache_ttl_seconds,
            agent_limits=(settings.rate_limit_agent_pending, settings.rate_limit_agent_verified),
            tokens=token_signer(settings),
            human_limit=settings.rate_limit_human,
        ),
        limiter=RateLimiter(
            redis,
            enabled=settings.rate_limit_enabled,
            batch_seconds=settings.rate_limit_batch_seconds,
        ),
        evaluation_queue=EvaluationQueue(settings.redis_url),
    )
