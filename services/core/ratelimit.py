"""Atomic rate limiting in Redis: one Lua script implementing GCRA per bucket key.

When Redis is unreachable the limiter fails open (the request proceeds, a warning is logged and
`ratelimit_unavailable_total` counts it): a cache outage must not take the API down, and
per-principal limits protect fairness rather than correctness. Health checks report Redis as
down, so Envoy stops routing to the service while the outage lasts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
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
# One call checks all of a request's buckets (KEYS, with their limits in ARGV[2..]) and consumes
# from them only if every one allows it: a request refused by one limit costs nothing from the
# others, and one round trip serves them all.
_GCRA = """
local period = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out, writes, refused = {}, {}, false
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[i + 1])
  local emission = math.floor(period * 1000000 / limit)
  local burst = emission * limit
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  local new_tat = tat + emission
  local allow_at = new_tat - burst
  if allow_at > now then
    refused = true
    table.insert(out, {0, 0, tostring((allow_at - now) / 1000000), tostring((tat - now) / 1000000)})
  else
    writes[key] = new_tat
    table.insert(out, {1, math.floor((now - allow_at) / emission), '0',
                       tostring((new_tat - now) / 1000000)})
  end
end
if not refused then
  for key, new_tat in pairs(writes) do
    local ttl_ms = math.ceil((new_tat - now) / 1000) + 1
    redis.call('SET', key, string.format('%d', new_tat), 'PX', ttl_ms)
  end
end
return out
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
        decisions = await self.hit_all([(bucket, limit)], period_seconds=period_seconds)
        return decisions[0] if decisions else None

    async def hit_all(
        self, buckets: Sequence[tuple[str, int]], *, period_seconds: float = 60.0
    ) -> list[Decision] | None:
        """Checks one request against every (bucket, limit) in one round trip and consumes it
        from all of them only if all allow it; one decision per bucket, in order. None when
        limiting is off or Redis is unreachable (fail open)."""
        if not self._enabled or not buckets:
            return None
        try:
            replies = await self._script(
                keys=[f"bw:rl:{bucket}" for bucket, _ in buckets],
                args=[period_seconds, *(limit for _, limit in buckets)],
            )
        except (RedisError, OSError):
            RATELIMIT_UNAVAILABLE.inc()
            log.warning("ratelimit_unavailable", bucket=buckets[0][0].split(":", 1)[0])
            return None
        decisions = []
        for (bucket, limit), (allowed, remaining, retry_after, reset) in zip(
            buckets, replies, strict=True
        ):
            decision = Decision(
                allowed=bool(allowed),
                limit=limit,
                remaining=int(remaining),
                reset_seconds=float(reset),
                retry_after_seconds=float(retry_after),
            )
            if not decision.allowed:
                RATELIMIT_REJECTED.labels(bucket=bucket.split(":", 1)[0]).inc()
            decisions.append(decision)
        return decisions
