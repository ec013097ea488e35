"""The decision rule: Layer A and B results plus the author's trust tier give a status."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from services.guardrail.classifier.base import Classification, ContentType, HarmRisk


class TrustTier(StrEnum):
    """How much an author's track record earns."""

    NEW = "new"
    """Account younger than 8 days or fewer than 3 approved items: every pass is reviewed."""
    VERIFIED = "verified"
    """Decided by the thresholds."""


@dataclass(frozen=True)
class Thresholds:
    """Score boundaries (settings)."""

    approve: float = 0.70
    flag: float = 0.40
    solution_reject_below: float = 40.0
    # The local heuristics score a short, concrete solution 55-60 (they reward length and
    # cues); below 60 caught 10-27 % of the benign solutions in the development sets, below 55
    # at most 4 %. Quality review is for thin solutions, not brief ones.
    solution_flag_below: float = 55.0
    new_account_days: int = 8
    new_account_min_approved: int = 3


@dataclass(frozen=True)
class Verdict:
    """A decision and the explanation the author sees."""

    status: str
    explanation: str


def trust_tier(account_age_days: float, approved_items: int, thresholds: Thresholds) -> TrustTier:
    """NEW until the account is old enough and has enough approved content."""
    if (
        account_age_days < thresholds.new_account_days
        or approved_items < thresholds.new_account_min_approved
    ):
        return TrustTier.NEW
    return TrustTier.VERIFIED


def decide(
    classification: Classification,
    *,
    content_type: ContentType,
    tier: TrustTier,
    thresholds: Thresholds,
) -> Verdict:
    """APPROVED, FLAGGED or REJECTED for content that passed Layer A."""
    score = classification.alignment_score
    if classification.harm_risk is HarmRisk.HIGH:
        categories = ", ".join(classification.harm_categories) or "harmful content"
        return Verdict("REJECTED", f"the content appears harmful ({categories})")
    if score < thresholds.flag and not classification.uncertain:
        return Verdict(
            "REJECTED",
            "the content does not appear to address a social-good problem in any of the domains",
        )
    if content_type is ContentType.SOLUTION and classification.solution_scores is not None:
        composite = classification.solution_scores.composite
        if composite < thresholds.solution_reject_below:
            return Verdict(
                "REJECTED",
                f"the solution scored {composite:.0f}/100 for impact, feasibility and cost "
                "efficiency; describe it in more detail",
            )
    reasons = []
    if classification.uncertain:
        reasons.append("the classifier could not decide")
    if classification.harm_risk is HarmRisk.MEDIUM:
        reasons.append("possible harm needs a human look")
    if score < thresholds.approve:
        reasons.append(f"alignment {score:.2f} is below {thresholds.approve:.2f}")
    if (
        content_type is ContentType.SOLUTION
        and classification.solution_scores is not None
        and classification.solution_scores.composite < thresholds.solution_flag_below
    ):
        reasons.append("the solution's quality score is borderline")
    if tier is TrustTier.NEW:
        reasons.append("new authors' content is reviewed by a person")
    if reasons:
        return Verdict("FLAGGED", "waiting for review: " + "; ".join(reasons))
    return Verdict("APPROVED", "")


def final_verdict(
    rule_categories: Sequence[str], classification: Classification | None, own: Verdict | None
) -> Verdict:
    """The guardrail's decision from the categories Layer A blocked on and Layer B's verdict
    (`own`, None when it could not run): a match goes through `after_rules_match`; without one,
    Layer B decides, and without Layer B (the model budget spent) a person does."""
    if rule_categories:
        return after_rules_match(", ".join(rule_categories), classification, own)
    if own is None:
        return Verdict("FLAGGED", "waiting for review: the daily model budget is spent")
    return own


def after_rules_match(
    categories: str, classification: Classification | None, own: Verdict | None
) -> Verdict:
    """The decision when Layer A matched: `confirm_rejection`, except that a match never makes
    a decision looser than Layer B's `own` (a post Layer B rejects by itself, off-topic say,
    stays rejected rather than going to a person)."""
    verdict = confirm_rejection(categories, classification)
    if verdict.status == "FLAGGED" and own is not None and own.status == "REJECTED":
        return own
    return verdict


def confirm_rejection(categories: str, classification: Classification | None) -> Verdict:
    """Layer A matched a harmful act; rejection is final and tells an author their work is
    harmful, so it needs Layer B's agreement (HIGH harm). When the classifier disagrees, could
    not run, or only sees possible harm, a person decides: the rules alone mistake reports that
    name an act in order to fight it for the act itself."""
    if classification is not None and classification.harm_risk is HarmRisk.HIGH:
        return Verdict("REJECTED", f"matches forbidden categories: {categories}")
    return Verdict(
        "FLAGGED",
        f"waiting for review: the rules matched {categories}, the classifier did not confirm it",
    )
