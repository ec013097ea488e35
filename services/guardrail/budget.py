"""The daily model budget: cents spent per UTC day, shared by every worker through Redis.

When the day's spend reaches the limit, items go to human review instead of the model. The check
and the spend are separate steps, so concurrent workers can overshoot by at most one call each
(a fraction of a cent with Haiku); an atomic reservation would need the cost before the call.

Redis errors never fail a job: `can_spend` then answers yes (a Redis outage also stops the job
queue, so at most the calls already in flight are unaccounted) and `record` logs and moves on.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.core.logging import get_logger
from services.guardrail.classifier.base import ClassifierError

log = get_logger(__name__)
BUDGET_UNAVAILABLE = Counter(
    "guardrail_budget_unavailable_total", "Budget checks or records skipped because Redis failed"
)
KEY_TTL_SECONDS = 2 * 24 * 3600
"""A day's counter outlives its day, so yesterday's spend stays readable for stats."""


class BudgetExhausted(ClassifierError):
    """Today's model budget is spent; not retryable today, the item goes to human review."""

    def __init__(self, spent_cents: float, limit_cents: float) -> None:
        super().__init__(
            f"daily model budget exhausted ({spent_cents:.2f} of {limit_cents:.2f} cents)",
            retryable=False,
        )
        self.spent_cents = spent_cents
        self.limit_cents = limit_cents


class DailyBudget:
    """Tracks today's model spend against a limit in cents (0 disables model calls)."""

    def __init__(
        self,
        redis: Redis,
        *,
        limit_cents: float,
        prefix: str = "bw:guardrail:budget",
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._redis = redis
        self.limit_cents = limit_cents
        self._prefix = prefix
        self._clock = clock or (lambda: datetime.now(UTC))

    def key(self, day: date | None = None) -> str:
        """The counter of one UTC day (today by default)."""
        day = day or self._clock().astimezone(UTC).date()
        return f"{self._prefix}:{day.isoformat()}"

    async def spent_today(self) -> float | None:
        """Cents spent today; None when Redis cannot be read."""
        try:
            raw = await self._redis.get(self.key())
        except (RedisError, OSError):
            BUDGET_UNAVAILABLE.inc()
            log.warning("guardrail_budget_unavailable", operation="read")
            return None
        return float(raw) if raw is not None else 0.0

    async def can_spend(self) -> bool:
        """False once today's spend reached the limit; True when Redis is unreachable."""
        if self.limit_cents <= 0:
            return False
        spent = await self.spent_today()
        return spent is None or spent < self.limit_cents

    async def ensure_available(self) -> None:
        """Raises BudgetExhausted when `can_spend` is False."""
        if self.limit_cents <= 0:
            raise BudgetExhausted(0.0, self.limit_cents)
        spent = await self.spent_today()
        if spent is not None and spent >= self.limit_cents:
            raise BudgetExhausted(spent, self.limit_cents)

    async def record(self, cents: float) -> float | None:
        """Adds a call's cost to today's counter; the new total, or None when Redis failed."""
        if cents <= 0:
            return await self.spent_today()
        key = self.key()
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incrbyfloat(key, cents)
                pipe.expire(key, KEY_TTL_SECONDS)
                total, _ = await pipe.execute()
        except (RedisError, OSError):
            BUDGET_UNAVAILABLE.inc()
            log.warning("guardrail_budget_unavailable", operation="record", cents=cents)
            return None
        return float(total)
