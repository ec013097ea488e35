"""The decision: Layer B confirms a Layer A match, never loosens its own, and judges solutions."""

from __future__ import annotations

import pytest

from services.guardrail.classifier.base import (
    Classification,
    ContentType,
    HarmRisk,
    SolutionScores,
)
from services.guardrail.decision import (
    Thresholds,
    TrustTier,
    after_rules_match,
    decide,
    final_verdict,
)


def _classification(harm: HarmRisk, domain: str | None = "food_security") -> Classification:
    return Classification(
        aligned_domain=domain,
        alignment_score=0.9 if domain else 0.05,
        harm_risk=harm,
        harm_categories=("weapons",) if harm is not HarmRisk.NONE else (),
    )


def _own(classification: Classification) -> str:
    return decide(
        classification,
        content_type=ContentType.PROBLEM,
        tier=TrustTier.VERIFIED,
        thresholds=Thresholds(),
    ).status


@pytest.mark.parametrize(
    ("classification", "expected"),
    [
        (_classification(HarmRisk.HIGH), "REJECTED"),  # Layer B confirms the match
        (_classification(HarmRisk.NONE), "FLAGGED"),  # it disagrees: a person decides
        (_classification(HarmRisk.MEDIUM), "FLAGGED"),
        # Off-topic: Layer B rejects it by itself, and a match does not soften that.
        (_classification(HarmRisk.NONE, domain=None), "REJECTED"),
        (None, "FLAGGED"),  # no model answer (budget spent)
    ],
)
def test_a_rule_match_is_rejected_only_with_layer_b_and_never_loosened(
    classification: Classification | None, expected: str
) -> None:
    own = None
    if classification is not None:
        own = decide(
            classification,
            content_type=ContentType.PROBLEM,
            tier=TrustTier.VERIFIED,
            thresholds=Thresholds(),
        )
    assert after_rules_match("weapons", classification, own).status == expected
    if classification is not None and expected == "FLAGGED":
        assert _own(classification) != "REJECTED"


@pytest.mark.parametrize(
    ("composite", "expected"),
    [(38.0, "REJECTED"), (52.0, "FLAGGED"), (57.0, "APPROVED"), (80.0, "APPROVED")],
)
def test_a_solution_is_judged_by_its_quality_bands(composite: float, expected: str) -> None:
    scores = SolutionScores(impact=composite, feasibility=composite, cost_efficiency=composite)
    classification = Classification(
        aligned_domain="food_security",
        alignment_score=0.9,
        harm_risk=HarmRisk.NONE,
        harm_categories=(),
        solution_scores=scores,
    )
    verdict = decide(
        classification,
        content_type=ContentType.SOLUTION,
        tier=TrustTier.VERIFIED,
        thresholds=Thresholds(),
    )
    assert verdict.status == expected


def test_the_final_verdict_without_a_match_is_layer_b_s_or_a_person_s() -> None:
    classification = _classification(HarmRisk.NONE)
    own = decide(
        classification,
        content_type=ContentType.PROBLEM,
        tier=TrustTier.VERIFIED,
        thresholds=Thresholds(),
    )
    assert final_verdict((), classification, own) == own
    assert final_verdict((), None, None).status == "FLAGGED"  # the model budget is spent
    assert final_verdict(("weapons",), classification, own).status == "FLAGGED"
