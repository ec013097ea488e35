"""One evaluation: Layer A rules, Layer B classifier (cached), the decision, and its record."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter, Histogram

from services.core.budget import BudgetExhausted
from services.core.queues import EvaluationJob
from services.guardrail.apply import Apply
from services.guardrail.cache import ResultCache
from services.guardrail.classifier.base import (
    Classification,
    Classifier,
    ContentItem,
    ContentType,
)
from services.guardrail.decision import Thresholds, Verdict, decide, final_verdict, trust_tier
from services.guardrail.records import NewEvaluation, RuleHit
from services.guardrail.rules.engine import RuleSet
from services.guardrail.store import GuardrailStore

EVALUATION_SECONDS = Histogram(
    "guardrail_evaluation_duration_seconds", "Whole evaluations by decision", ["decision"]
)
LAYER_SECONDS = Histogram(
    "guardrail_layer_duration_seconds",
    "Time per guardrail layer",
    ["layer"],
    buckets=(0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30),
)
DECISIONS = Counter("guardrail_decisions_total", "Guardrail decisions", ["decision", "kind"])


@dataclass(frozen=True)
class Outcome:
    """What an evaluation decided, with what the content service records."""

    verdict: Verdict
    classification: Classification | None
    record: dict[str, Any] = field(default_factory=dict)


@dataclass
class Pipeline:
    """Evaluates jobs; `apply` records the decision on the content (internal RPC)."""

    store: GuardrailStore
    rules: RuleSet
    classifier: Classifier
    cache: ResultCache
    thresholds: Thresholds
    apply: Apply

    async def evaluate(self, job: EvaluationJob, *, attempt: int = 1) -> Outcome:
        """Runs the layers, stores the evaluation, applies the decision; raises to retry."""
        started = time.perf_counter()
        timings: dict[str, float] = {}
        text = f"{job.title}\n{job.body}".strip()
        layer_a = self.rules.evaluate(text)
        timings["layer_a"] = layer_a.duration_ms
        LAYER_SECONDS.labels("a").observe(layer_a.duration_ms / 1000)
        classification: Classification | None = None
        cache_hit = False
        tier = trust_tier(job.author_account_age_days, job.author_approved_items, self.thresholds)
        content_type = ContentType(job.kind)
        item = ContentItem(content_type, job.title, job.body, job.claimed_domain)
        b_started = time.perf_counter()
        classification = await self.cache.get(item, self.classifier.name)
        cache_hit = classification is not None
        if classification is None:
            try:
                classification = await self.classifier.classify(item)
            except BudgetExhausted:
                classification = None
            else:
                await self.cache.set(item, self.classifier.name, classification)
        timings["layer_b"] = (time.perf_counter() - b_started) * 1000
        LAYER_SECONDS.labels("b").observe(timings["layer_b"] / 1000)
        own = None
        if classification is not None:
            own = decide(
                classification, content_type=content_type, tier=tier, thresholds=self.thresholds
            )
        verdict = final_verdict(layer_a.categories, classification, own)
        timings["total"] = (time.perf_counter() - started) * 1000
        await self.store.record(
            NewEvaluation(
                id=job.evaluation_id,
                content_kind=job.kind,
                content_id=job.content_id,
                author_agent_id=job.author_agent_id,
                decision=verdict.status,
                explanation=verdict.explanation,
                trust_tier=tier.value,
                rules_rejected=layer_a.rejected,
                ruleset=layer_a.ruleset_version,
                rule_hits=tuple(
                    RuleHit(m.category, m.rule_id, m.suppressed) for m in layer_a.matches
                ),
                alignment_score=classification.alignment_score if classification else None,
                aligned_domain=classification.aligned_domain if classification else None,
                harm_risk=classification.harm_risk.value if classification else None,
                classification=_layer_b(classification),
                classifier=self.classifier.name if classification else None,
                cache_hit=cache_hit,
                timings_ms=timings,
                attempts=attempt,
            )
        )
        await self.apply(job, verdict, classification)
        EVALUATION_SECONDS.labels(verdict.status).observe(time.perf_counter() - started)
        DECISIONS.labels(verdict.status, job.kind).inc()
        return Outcome(verdict, classification)

    async def dead_letter(self, job: EvaluationJob, error: str, attempts: int) -> None:
        """After the last failed attempt: flag the item for a person, with the reason."""
        verdict = Verdict("FLAGGED", f"waiting for review: automatic evaluation failed ({error})")
        await self.store.record(
            NewEvaluation(
                id=job.evaluation_id,
                content_kind=job.kind,
                content_id=job.content_id,
                author_agent_id=job.author_agent_id,
                decision="FLAGGED",
                explanation=verdict.explanation,
                trust_tier="unknown",
                attempts=attempts,
                dead_letter=True,
            )
        )
        await self.apply(job, verdict, None)
        DECISIONS.labels("FLAGGED", job.kind).inc()


def _layer_b(classification: Classification | None) -> dict[str, Any] | None:
    if classification is None:
        return None
    scores = classification.solution_scores
    return {
        "alignedDomain": classification.aligned_domain,
        "alignmentScore": classification.alignment_score,
        "harmRisk": classification.harm_risk.value,
        "harmCategories": list(classification.harm_categories),
        "uncertain": classification.uncertain,
        "reasoning": classification.reasoning,
        "model": classification.model,
        "costCents": classification.cost_cents,
        "solutionScores": None
        if scores is None
        else {
            "impact": scores.impact,
            "feasibility": scores.feasibility,
            "costEfficiency": scores.cost_efficiency,
            "composite": scores.composite,
        },
    }
