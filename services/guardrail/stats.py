"""Operator statistics: decision rates, cache, latencies, budget and queue depth."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from services.core import errors
from services.guardrail.deps import GuardrailDeps


@dataclass(frozen=True)
class Stats:
    """The numbers GetGuardrailStats reports."""

    evaluations: int
    approval_rate: float
    flag_rate: float
    reject_rate: float
    cache_hit_rate: float
    layer_a_ms: tuple[float, float]
    layer_b_ms: tuple[float, float]
    budget_used_cents: float
    budget_limit_cents: float
    queue: dict[str, int]
    flagged_waiting: int


async def guardrail_stats(deps: GuardrailDeps, window_hours: int) -> Stats:
    """Over the last `window_hours` (default 24, 1-720)."""
    hours = window_hours or 24
    if not 1 <= hours <= 720:
        raise errors.InvalidArgument.one("window_hours", "must be between 1 and 720")
    counts = await deps.store.counts(datetime.now(UTC) - timedelta(hours=hours))
    total = counts.total

    def rate(n: int, of: int) -> float:
        return round(n / of, 4) if of else 0.0

    queue = await deps.queue.getJobCounts("waiting", "active", "delayed")
    return Stats(
        evaluations=total,
        approval_rate=rate(counts.approved, total),
        flag_rate=rate(counts.flagged, total),
        reject_rate=rate(counts.rejected, total),
        cache_hit_rate=rate(counts.cache_hits, counts.layer_b_runs),
        layer_a_ms=counts.layer_a_ms,
        layer_b_ms=counts.layer_b_ms,
        budget_used_cents=(await deps.budget.spent_today()) or 0.0,
        budget_limit_cents=deps.budget.limit_cents,
        queue={k: int(v) for k, v in queue.items()},
        flagged_waiting=counts.flagged_waiting,
    )
