"""Atomic rate limiting in Redis: one Lua script implementing GCRA per bucket key.

When Redis is unreachable the limiter fails open (the request proceeds, a warning is logged and
`ratelimit_unavailable_total` counts it): a cache outage must not take the API down, and
per-principal limits protect fairness rather than correctness. Health checks report Redis as
down, so Envoy stops routing to the service while the outage lasts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.core.logging import get_logger

log = get_logger(__name__)
RATELIMIT_UNAVAILABLE = Counter(
    "ratelimit_unavailable_total", "Rate-limit checks skipped because Redis was unreachable"
)
RATELIMIT_REJECTED = Counter(
    "ratelimit_rejected_total", "Requests rejected by a rate limit", ["bucket"]
)

# GCRA (generic cell rate algorithm): one key holds the theoretical arrival time (TAT). Burst is
# the whole limit, so `limit` requests fit in any window of `period` seconds. Redis TIME keeps
# every service process on one clock. Times are whole microseconds: exact in Lua's doubles
# (below 2^53), where fractional epoch seconds would round and miscount the remaining requests.
_GCRA = """
local limit = tonumber(ARGV[1])
local emission = math.floor(tonumber(ARGV[2]) * 1000000 / limit)
local burst = emission * limit
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + emission
local allow_at = new_tat - burst
if allow_at > now then
  return {0, 0, tostring((allow_at - now) / 1000000), tostring((tat - now) / 1000000)}
end
local ttl_ms = math.ceil((new_tat - now) / 1000) + 1
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', ttl_ms)
return {1, math.floor((now - allow_at) / emission), '0', tostring((new_tat - now) / 1000000)}
"""


@dataclass(frozen=True)
class Decision:
    """The outcome of one check, with what the X-RateLimit-* headers report."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: float
    retry_after_seconds: float

    def headers(self) -> dict[str, str]:
        """X-RateLimit-* (and Retry-After when rejected) as response metadata."""
        out = {
            "x-ratelimit-limit": str(self.limit),
            "x-ratelimit-remaining": str(self.remaining),
            "x-ratelimit-reset": str(math.ceil(self.reset_seconds)),
        }
        if not self.allowed:
            out["retry-after"] = str(max(1, math.ceil(self.retry_after_seconds)))
        return out


class RateLimiter:
    """Checks and consumes one request from a bucket."""

    def __init__(self, redis: Redis, *, enabled: bool = True) -> None:
        self._redis = redis
        self._enabled = enabled
        self._script = redis.register_script(_GCRA)

    async def hit(
        self, bucket: str, *, limit: int, period_seconds: float = 60.0
    ) -> Decision | None:
        """Consumes one request; None when limiting is off or Redis is unreachable (fail open)."""
        if not self._enabled:
            return None
        try:
            allowed, remaining, retry_after, reset = await self._script(
                keys=[f"bw:rl:{bucket}"], args=[limit, period_seconds]
            )
        except (RedisError, OSError):
            RATELIMIT_UNAVAILABLE.inc()
            log.warning("ratelimit_unavailable", bucket=bucket.split(":", 1)[0])
            return None
        decision = Decision(
            allowed=bool(allowed),
            limit=limit,
            remaining=int(remaining),
            reset_seconds=float(reset),
            retry_after_seconds=float(retry_after),
        )
        if not decision.allowed:
            RATELIMIT_REJECTED.labels(bucket=bucket.split(":", 1)[0]).inc()
        return decision
