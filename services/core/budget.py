"""A daily model budget: cents spent per UTC day, shared by every worker through Redis.

Each service that pays for model calls keeps its own budget under its own key prefix (the
guardrail's classifier, the evidence check); when the day's spend reaches the limit, the service
sends the work to humans instead of the model. The check and the spend are separate steps, so
concurrent workers can overshoot by at most one call each (a fraction of a cent with Haiku); an
atomic reservation would need the cost before the call.

Redis errors never fail the caller: `can_spend` then answers yes (a Redis outage also stops the
job queues, so at most the calls already in flight are unaccounted) and `record` logs and moves on.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.core.logging import get_logger

log = get_logger(__name__)
BUDGET_UNAVAILABLE = Counter(
    "model_budget_unavailable_total",
    "Model budget checks or records skipped because Redis failed, by budget",
    ["budget"],
)
KEY_TTL_SECONDS = 2 * 24 * 3600
"""A day's counter outlives its day, so yesterday's spend stays readable for stats."""


class BudgetExhausted(Exception):
    """Today's model budget is spent: not retryable today, the item goes to humans."""

    retryable = False
    """Retrying before the next UTC day would find the budget spent again."""

    def __init__(self, spent_cents: float, limit_cents: float) -> None:
        super().__init__(
            f"daily model budget exhausted ({spent_cents:.2f} of {limit_cents:.2f} cents)"
        )
        self.spent_cents = spent_cents
        self.limit_cents = limit_cents


class DailyBudget:
    """Tracks today's model spend against a limit in cents (0 disables model calls).

    `prefix` namespaces the Redis keys (`{prefix}:{YYYY-MM-DD}`); `name` labels the budget in
    metrics and logs and defaults to the prefix's last part.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        limit_cents: float,
        prefix: str,
        name: str | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._redis = redis
        self.limit_cents = limit_cents
        self._prefix = prefix
        self.name = name or prefix.rsplit(":", 1)[-1]
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
            self._unavailable("read")
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
            self._unavailable("record", cents=cents)
            return None
        return float(total)

    def _unavailable(self, operation: str, **fields: float) -> None:
        BUDGET_UNAVAILABLE.labels(budget=self.name).inc()
        log.warning("model_budget_unavailable", budget=self.name, operation=operation, **fields)
