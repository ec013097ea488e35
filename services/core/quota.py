"""Fixed-window quotas in Valkey for business limits that count uses, not requests (codes
emailed per address, plans asked per agent per day): unlike the per-request rate limits they
stay on when RATE_LIMIT_ENABLED is off."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.core import errors
from services.core.logging import get_logger

log = get_logger(__name__)


async def spend(redis: Redis, key: str, *, limit: int, window_seconds: int) -> float | None:
    """Counts one use in the window the key's first use opened; when that passes `limit`, the
    seconds until the window closes (the use is not taken back: refund it if it should not
    count). None when allowed, or when Valkey is unreachable (fail open, logged)."""
    try:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, window_seconds, nx=True)
            pipe.ttl(key)
            count, _, ttl = await pipe.execute()
    except (RedisError, OSError):
        log.error("quota_unavailable", key=key.rsplit(":", 1)[0])
        return None
    return float(max(ttl, 1)) if count > limit else None


async def refund(redis: Redis, key: str) -> None:
    """Takes one use back (an attempt that failed on our side). Best effort."""
    try:
        await redis.decr(key)
    except (RedisError, OSError):
        log.error("quota_refund_failed", key=key.rsplit(":", 1)[0])


async def require(
    redis: Redis, key: str, *, limit: int, window_seconds: int, what: str, reason: str
) -> None:
    """Spends one use or raises RESOURCE_EXHAUSTED (`reason`, RetryInfo, a QuotaFailure whose
    subject is the key's second part) saying "at most `limit` `what`"."""
    wait = await spend(redis, key, limit=limit, window_seconds=window_seconds)
    if wait is not None:
        raise errors.ResourceExhausted(
            f"at most {limit} {what}",
            retry_after_seconds=wait,
            violations=[errors.QuotaViolation(key.split(":")[1], f"{limit} {what}")],
            reason=reason,
        )
