"""What the GuardrailService domain functions need, built once by its composition root."""

from __future__ import annotations

from dataclasses import dataclass

from bullmq import Queue
from redis.asyncio import Redis

from services.core.budget import DailyBudget
from services.core.pagination import CursorCodec
from services.guardrail.apply import Apply
from services.guardrail.cache import ResultCache
from services.guardrail.rules.engine import RuleSet
from services.guardrail.store import GuardrailStore

BUDGET_PREFIX = "bw:guardrail:budget"
"""Redis keys of the classifier's daily model budget, one counter per UTC day."""


def classifier_budget(redis: Redis, limit_cents: float) -> DailyBudget:
    """The classifier's daily model budget, as the worker spends it and the service reports it."""
    return DailyBudget(redis, limit_cents=limit_cents, prefix=BUDGET_PREFIX, name="guardrail")


@dataclass(frozen=True)
class GuardrailDeps:
    """Clients of the guardrail domain."""

    store: GuardrailStore
    rules: RuleSet
    cache: ResultCache
    classifier_name: str
    """The classifier whose cached verdicts precheck reports."""
    queue: Queue
    budget: DailyBudget
    cursors: CursorCodec
    apply: Apply
    """Records a review decision on the content (internal RPC)."""
