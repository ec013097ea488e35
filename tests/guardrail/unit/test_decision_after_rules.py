"""The decision when Layer A matched: Layer B confirms a rejection, and never loosens its own."""

from __future__ import annotations

import pytest

from services.guardrail.classifier.base import Classification, ContentType, HarmRisk
from services.guardrail.decision import Thresholds, TrustTier, after_rules_match, decide


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
