"""Redis/Valkey client construction (cache, rate limits, queues)."""

from __future__ import annotations

from redis.asyncio import Redis

from services.core.settings import Settings


def create_redis(settings: Settings) -> Redis:
    """A pooled client whose calls fail fast when Redis is unreachable."""
    return Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.redis_timeout_seconds,
        socket_connect_timeout=settings.redis_timeout_seconds,
        health_check_interval=15,
        decode_responses=False,
    )
