"""Runs labelled items through the guardrail's real layers and decision, as a trusted author."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from services.guardrail.classifier.base import Classification, Classifier, ContentItem, ContentType
from services.guardrail.decision import Thresholds, TrustTier, Verdict, decide, final_verdict
from services.guardrail.rules.engine import LayerAResult, RuleSet
from tooling.guardrail_eval.dataset import Item


@dataclass(frozen=True)
class Result:
    """What each layer said about one item, and the decision the worker would record."""

    item: Item
    layer_a: LayerAResult
    classification: Classification
    classify_ms: float
    layer_b: Verdict
    """The decision from Layer B alone (as if Layer A had passed the item)."""

    @property
    def layer_b_status(self) -> str:
        """Layer B's decision alone."""
        return self.layer_b.status

    @property
    def status(self) -> str:
        """The pipeline's decision (`final_verdict`): a Layer A match is rejected when Layer B
        confirms it, or when Layer B rejects the post by itself; else a person decides. Without a
        match, Layer B's decision."""
        return final_verdict(self.layer_a.categories, self.classification, self.layer_b).status

    @property
    def reason(self) -> str:
        """Why the pipeline decided as it did, in a line."""
        if self.layer_a.rejected:
            blocking = ", ".join(f"{m.category}/{m.rule_id}" for m in self.layer_a.blocking)
            return f"Layer A: {blocking} (Layer B: harm {self.classification.harm_risk.value})"
        return f"Layer B: {self.classification.reasoning}"


async def evaluate(
    items: Sequence[Item],
    rules: RuleSet,
    classifier: Classifier,
    thresholds: Thresholds | None = None,
) -> list[Result]:
    """Every item through Layer A and Layer B (B runs on all, to report it alone too)."""
    limits = thresholds or Thresholds()
    results = []
    for item in items:
        layer_a = rules.evaluate(item.text)
        content = ContentItem(
            ContentType(item.content_type), item.title, item.description, item.claimed_domain
        )
        started = time.perf_counter()
        classification = await classifier.classify(content)
        elapsed = (time.perf_counter() - started) * 1000
        verdict = decide(
            classification,
            content_type=content.content_type,
            tier=TrustTier.VERIFIED,
            thresholds=limits,
        )
        results.append(Result(item, layer_a, classification, elapsed, verdict))
    return results
