"""What the GuardrailService domain functions need, built once by its composition root."""

from __future__ import annotations

from dataclasses import dataclass

from bullmq import Queue

from services.core.pagination import CursorCodec
from services.guardrail.apply import Apply
from services.guardrail.budget import DailyBudget
from services.guardrail.cache import ResultCache
from services.guardrail.rules.engine import RuleSet
from services.guardrail.store import GuardrailStore


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
