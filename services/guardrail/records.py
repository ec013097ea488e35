"""What the guardrail stores, as frozen records (the stores' currency)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class RuleHit:
    """One Layer A rule that matched, as recorded."""

    category: str
    rule: str
    suppressed: bool


@dataclass(frozen=True)
class NewEvaluation:
    """An evaluation to record (or, for a retried job, to replace)."""

    id: str
    content_kind: str
    content_id: str
    author_agent_id: str
    decision: str
    explanation: str
    trust_tier: str
    rules_rejected: bool = False
    ruleset: str = ""
    rule_hits: tuple[RuleHit, ...] = ()
    alignment_score: float | None = None
    aligned_domain: str | None = None
    harm_risk: str | None = None
    classification: dict[str, Any] | None = None
    """Layer B's answer as JSON (model, scores, reasoning, cost); None when it did not run."""
    classifier: str | None = None
    cache_hit: bool = False
    timings_ms: dict[str, float] = field(default_factory=dict)
    attempts: int = 1
    dead_letter: bool = False
    """Recorded after the last failed attempt: no layer outcome to keep."""


@dataclass(frozen=True)
class EvaluationRecord:
    """A recorded evaluation."""

    id: str
    content_kind: str
    content_id: str
    author_agent_id: str
    decision: str
    explanation: str
    alignment_score: float | None
    aligned_domain: str | None
    harm_risk: str | None
    trust_tier: str
    rules_rejected: bool
    rule_hits: tuple[RuleHit, ...]
    classifier: str | None
    cache_hit: bool
    timings_ms: dict[str, float]
    attempts: int
    created_at: datetime


@dataclass(frozen=True)
class FlaggedRecord:
    """An item of the human review queue."""

    id: str
    evaluation_id: str
    content_kind: str
    content_id: str
    reason: str
    status: str
    claimed_by: str | None
    claimed_at: datetime | None
    review_decision: str | None
    review_notes: str | None
    reviewed_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class EvaluationCounts:
    """Decisions, cache use and layer latencies over a window."""

    total: int
    approved: int
    flagged: int
    rejected: int
    layer_b_runs: int
    cache_hits: int
    layer_a_ms: tuple[float, float]
    """Median and 99th percentile."""
    layer_b_ms: tuple[float, float]
    flagged_waiting: int
