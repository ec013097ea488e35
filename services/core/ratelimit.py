"""Atomic rate limiting in Redis: one Lua script implementing GCRA per bucket key.

When Redis is unreachable the limiter fails open (the request proceeds, a warning is logged and
`ratelimit_unavailable_total` counts it): a cache outage must not take the API down, and
per-principal limits protect fairness rather than correctness. Health checks report Redis as
down, so Envoy stops routing to the service while the outage lasts.

A round trip to Redis per request cost the content service a fifth of its CPU on cached list
pages. So, with `batch_seconds` set, a process answers a client with plenty of its limit left
by itself, and charges Redis with what it served once per interval. A bucket is answered
locally while Redis's last answer about it is under a second old, the bucket keeps more than
half of its limit after what this process served since, and less than a twentieth of the limit
is still uncharged. Otherwise (near the limit, and always for limits under 20) the request
asks Redis, so one process refuses exactly as without batching; with P processes a client can
get at most P * limit/20 requests more than its limit, once.
"""

from __future__ import annotations

import asyncio
import math
import time
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
# One call handles all of a request's buckets (KEYS; ARGV[3..] holds each one's limit and the
# requests a process already served for it without asking). Those served requests are charged
# whatever happens, at most one period into debt. With ARGV[2] = 1 the call then takes one more
# request from every bucket only if every one allows it: a request refused by one limit costs
# nothing from the others, and one round trip serves them all. With ARGV[2] = 0 it only charges.
_GCRA = """
local period = tonumber(ARGV[1])
local take = ARGV[2] == '1'
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local buckets, refused = {}, false
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[2 * i + 1])
  local served = tonumber(ARGV[2 * i + 2])
  local emission = math.floor(period * 1000000 / limit)
  local burst = emission * limit
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  tat = math.min(tat + served * emission, now + 2 * burst)
  local new_tat = tat + emission
  if take and new_tat - burst > now then refused = true end
  buckets[i] = {key, served, emission, burst, tat, new_tat}
end
local out = {}
for i, b in ipairs(buckets) do
  local key, served, emission, burst, tat, new_tat = b[1], b[2], b[3], b[4], b[5], b[6]
  local final, write = tat, served > 0
  if take and not refused then final, write = new_tat, true end
  if write and final > now then
    redis.call('SET', key, string.format('%d', final), 'PX', math.ceil((final - now) / 1000) + 1)
  end
  if not take then
    out[i] = {1, math.max(0, math.floor((now - (tat - burst)) / emission)), '0',
              tostring((tat - now) / 1000000)}
  elseif new_tat - burst > now then
    out[i] = {0, 0, tostring((new_tat - burst - now) / 1000000), tostring((tat - now) / 1000000)}
  else
    out[i] = {1, math.floor((now - (new_tat - burst)) / emission), '0',
              tostring((new_tat - now) / 1000000)}
  end
end
return out
"""

# A bucket is answered locally only while Redis's last word on it is this recent.
_VIEW_SECONDS = 1.0
# At most this share (1/N) of a limit is served locally before Redis hears of it; limits
# under N are never served locally.
_LOCAL_SHARE = 20
# After a failed charge, the next try waits this long (Redis is down; don't spin on it).
_RETRY_CHARGE_SECONDS = 1.0


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


@dataclass
class _View:
    """A bucket as Redis last described it to this process, and what was served here since:
    `served` is not yet sent to Redis, `sending` is in a call that has not answered yet."""

    limit: int
    period_seconds: float
    remaining: int
    reset_seconds: float
    heard_at: float
    served: int = 0
    sending: int = 0

    def matches(self, limit: int, period_seconds: float) -> bool:
        return limit == self.limit and period_seconds == self.period_seconds

    def can_serve(self, limit: int, period_seconds: float, now: float) -> bool:
        unanswered = self.served + self.sending
        return (
            self.matches(limit, period_seconds)
            and now - self.heard_at < _VIEW_SECONDS
            and unanswered < limit // _LOCAL_SHARE
            and self.remaining - unanswered - 1 >= limit // 2
        )

    def serve(self) -> Decision:
        self.served += 1
        unanswered = self.served + self.sending
        return Decision(
            allowed=True,
            limit=self.limit,
            remaining=self.remaining - unanswered,
            reset_seconds=min(
                self.period_seconds,
                self.reset_seconds + unanswered * self.period_seconds / self.limit,
            ),
            retry_after_seconds=0.0,
        )


class RateLimiter:
    """Checks and consumes requests from buckets (see the module docstring for batching)."""

    def __init__(self, redis: Redis, *, enabled: bool = True, batch_seconds: float = 0.0) -> None:
        self._enabled = enabled
        self._batch_seconds = batch_seconds
        self._script = redis.register_script(_GCRA)
        self._views: dict[str, _View] = {}
        self._next_sweep = 0.0
        self._charger: asyncio.Task[None] | None = None

    async def hit(
        self, bucket: str, *, limit: int, period_seconds: float = 60.0
    ) -> Decision | None:
        """Consumes one request; None when limiting is off or Redis is unreachable (fail open)."""
        decisions = await self.hit_all([(bucket, limit)], period_seconds=period_seconds)
        return decisions[0] if decisions else None

    async def hit_all(
        self, buckets: Sequence[tuple[str, int]], *, period_seconds: float = 60.0
    ) -> list[Decision] | None:
        """Checks one request against every (bucket, limit) and consumes it from all of them
        only if all allow it; one decision per bucket, in order. None when limiting is off or
        Redis is unreachable (fail open)."""
        if not self._enabled or not buckets:
            return None
        keys = [f"bw:rl:{bucket}" for bucket, _ in buckets]
        limits = [limit for _, limit in buckets]
        if self._batch_seconds > 0:
            local = self._serve_locally(keys, limits, period_seconds)
            if local is not None:
                return local
        replies = await self._call(keys, limits, period_seconds, take=True)
        if replies is None:
            log.warning("ratelimit_unavailable", bucket=buckets[0][0].split(":", 1)[0])
            return None
        for (bucket, _), decision in zip(buckets, replies, strict=True):
            if not decision.allowed:
                RATELIMIT_REJECTED.labels(bucket=bucket.split(":", 1)[0]).inc()
        return replies

    async def charge(self) -> bool:
        """Sends Redis every request served here and not yet charged (one call per period);
        False when Redis could not be reached (they stay owed)."""
        owed = [(key, view) for key, view in self._views.items() if view.served]
        ok = True
        for period in {view.period_seconds for _, view in owed}:
            group = [(key, view) for key, view in owed if view.period_seconds == period]
            keys = [key for key, _ in group]
            limits = [view.limit for _, view in group]
            ok = await self._call(keys, limits, period, take=False) is not None and ok
        if not ok:
            log.warning("ratelimit_charge_failed", buckets=len(owed))
        return ok

    async def close(self) -> None:
        """Stops the background charging and charges what is still owed (best effort)."""
        if self._charger is not None:
            self._charger.cancel()
            await asyncio.gather(self._charger, return_exceptions=True)
            self._charger = None
        await self.charge()

    async def _call(
        self, keys: list[str], limits: list[int], period_seconds: float, *, take: bool
    ) -> list[Decision] | None:
        """One script call; passes along what each bucket owes and records what Redis says."""
        owed = []
        for key, limit in zip(keys, limits, strict=True):
            view = self._views.get(key)
            served = view.served if view is not None and view.matches(limit, period_seconds) else 0
            if served:
                view.served, view.sending = 0, view.sending + served  # type: ignore[union-attr]
            owed.append(served)
        args: list[float] = [period_seconds, 1 if take else 0]
        for limit, served in zip(limits, owed, strict=True):
            args += [limit, served]
        try:
            replies = await self._script(keys=keys, args=args)
        except (RedisError, OSError, asyncio.CancelledError) as exc:
            for key, served in zip(keys, owed, strict=True):
                view = self._views.get(key)
                if served and view is not None:  # still owed: the next call carries it
                    view.sending -= served
                    view.served += served
            if isinstance(exc, asyncio.CancelledError):
                raise
            RATELIMIT_UNAVAILABLE.inc()
            return None
        decisions = [_decision(limit, reply) for limit, reply in zip(limits, replies, strict=True)]
        if self._batch_seconds > 0:
            for key, decision, served in zip(keys, decisions, owed, strict=True):
                if decision.limit >= _LOCAL_SHARE:  # a view of a smaller limit is never used
                    self._heard(key, decision, period_seconds, served)
        return decisions

    def _heard(self, key: str, decision: Decision, period_seconds: float, charged: int) -> None:
        now = time.monotonic()
        view = self._views.get(key)
        if view is None or not view.matches(decision.limit, period_seconds):
            view = self._views[key] = _View(
                decision.limit, period_seconds, decision.remaining, decision.reset_seconds, now
            )
        else:
            view.sending = max(0, view.sending - charged)
            view.remaining, view.reset_seconds, view.heard_at = (
                decision.remaining,
                decision.reset_seconds,
                now,
            )
        if now >= self._next_sweep:
            self._next_sweep = now + _VIEW_SECONDS
            for stale in [
                k
                for k, v in self._views.items()
                if not v.served and not v.sending and now - v.heard_at >= _VIEW_SECONDS
            ]:
                del self._views[stale]

    def _serve_locally(
        self, keys: list[str], limits: list[int], period_seconds: float
    ) -> list[Decision] | None:
        now = time.monotonic()
        views = []
        for key, limit in zip(keys, limits, strict=True):
            view = self._views.get(key)
            if view is None or not view.can_serve(limit, period_seconds, now):
                return None
            views.append(view)
        if self._charger is None or self._charger.done():
            self._charger = asyncio.get_running_loop().create_task(self._charge_later())
        return [view.serve() for view in views]

    async def _charge_later(self) -> None:
        delay = self._batch_seconds
        while True:
            await asyncio.sleep(delay)
            ok = await self.charge()
            if not any(view.served for view in self._views.values()):
                return
            delay = self._batch_seconds if ok else _RETRY_CHARGE_SECONDS


def _decision(limit: int, reply: Sequence[object]) -> Decision:
    allowed, remaining, retry_after, reset = reply
    return Decision(
        allowed=bool(allowed),
        limit=limit,
        remaining=int(remaining),  # type: ignore[call-overload]
        reset_seconds=float(reset),  # type: ignore[arg-type]
        retry_after_seconds=float(retry_after),  # type: ignore[arg-type]
    )
