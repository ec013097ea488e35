"""Turns a Messages API response into a Classification, refusing anything off-schema."""

from __future__ import annotations

from typing import Any, Literal

from anthropic.types import Message
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from services.core.domains import DOMAINS
from services.guardrail.classifier.base import (
    Classification,
    ClassifierError,
    ContentType,
    HarmRisk,
    SolutionScores,
)
from services.guardrail.classifier.claude_prompt import (
    FORBIDDEN_CATEGORIES,
    NO_DOMAIN,
    REASONING_MAX_CHARS,
    TOOL_NAME,
)

# Below this a domain-less verdict is consistent; above it the model contradicts itself.
_OFF_TOPIC_SCORE_CEILING = 0.4


class ClaudeOutputError(ClassifierError):
    """The model answered, but not with a usable evaluation: always retryable (sampling varies)."""

    def __init__(self, message: str, *, cost_cents: float = 0.0) -> None:
        super().__init__(message, retryable=True)
        self.cost_cents = cost_cents
        """What the unusable response still cost."""


class EvaluationInput(BaseModel):
    """The `record_evaluation` tool input, validated strictly (no coercion from strings)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)

    aligned_domain: str | None
    alignment_score: float = Field(ge=0, le=1)
    harm_risk: Literal["none", "low", "medium", "high"]
    harm_categories: list[str] = Field(max_length=len(FORBIDDEN_CATEGORIES) * 2)
    impact: float | None = Field(default=None, ge=0, le=100)
    feasibility: float | None = Field(default=None, ge=0, le=100)
    cost_efficiency: float | None = Field(default=None, ge=0, le=100)
    reasoning: str

    @field_validator("aligned_domain")
    @classmethod
    def _known_domain(cls, value: str | None) -> str | None:
        if value is None or value == NO_DOMAIN:
            return None
        if value not in DOMAINS:
            raise ValueError(f"unknown domain {value[:40]!r}")
        return value

    @field_validator("harm_categories")
    @classmethod
    def _known_categories(cls, value: list[str]) -> list[str]:
        unknown = [c for c in value if c not in FORBIDDEN_CATEGORIES]
        if unknown:
            raise ValueError(f"unknown harm categories {[c[:40] for c in unknown[:3]]}")
        return list(dict.fromkeys(value))  # duplicates are harmless: drop them


def parse_tool_input(raw: object, content_type: ContentType) -> EvaluationInput:
    """Validates the tool input for this content type; ClaudeOutputError when it is off-schema."""
    if not isinstance(raw, dict):
        raise ClaudeOutputError(f"tool input is {type(raw).__name__}, not an object")
    try:
        evaluation = EvaluationInput.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'input'}: {err['msg']}"
            for err in exc.errors()[:5]
        )
        raise ClaudeOutputError(f"tool input off-schema: {problems}") from None
    if content_type is ContentType.SOLUTION:
        missing = [
            name
            for name in ("impact", "feasibility", "cost_efficiency")
            if getattr(evaluation, name) is None
        ]
        if missing:
            raise ClaudeOutputError(f"solution scores missing: {', '.join(missing)}")
    return evaluation


def to_classification(
    evaluation: EvaluationInput, content_type: ContentType, *, model: str, cost_cents: float
) -> Classification:
    """The verdict; self-contradictory answers are kept but marked uncertain (human review)."""
    harm_risk = HarmRisk(evaluation.harm_risk)
    scores = None
    if content_type is ContentType.SOLUTION:
        assert evaluation.impact is not None  # parse_tool_input guarantees all three
        assert evaluation.feasibility is not None
        assert evaluation.cost_efficiency is not None
        scores = SolutionScores(
            impact=evaluation.impact,
            feasibility=evaluation.feasibility,
            cost_efficiency=evaluation.cost_efficiency,
        )
    # A domain-less item scored as aligned, or harm categories with "no risk", is a verdict the
    # model contradicted itself on; a person decides rather than the thresholds.
    contradictions = []
    if evaluation.aligned_domain is None and evaluation.alignment_score >= _OFF_TOPIC_SCORE_CEILING:
        contradictions.append("aligned with no domain")
    if evaluation.harm_categories and harm_risk is HarmRisk.NONE:
        contradictions.append("harm categories with no harm risk")
    reasoning = evaluation.reasoning.strip()[:REASONING_MAX_CHARS]
    return Classification(
        aligned_domain=evaluation.aligned_domain,
        alignment_score=evaluation.alignment_score,
        harm_risk=harm_risk,
        harm_categories=tuple(evaluation.harm_categories),
        solution_scores=scores,
        reasoning=reasoning,
        model=model,
        cost_cents=cost_cents,
        uncertain=bool(contradictions),
        extra={f"contradiction:{c}": 1.0 for c in contradictions},
    )


def refusal_classification(model: str, cost_cents: float) -> Classification:
    """The API's safety classifier declined the request: no verdict, so a person reviews it."""
    return Classification(
        aligned_domain=None,
        alignment_score=0.0,
        harm_risk=HarmRisk.MEDIUM,
        reasoning="The model declined to evaluate this item (safety refusal); needs human review.",
        model=model,
        cost_cents=cost_cents,
        uncertain=True,
        extra={"refusal": 1.0},
    )


def classification_from_message(
    message: Message, content_type: ContentType, *, model: str, cost_cents: float
) -> Classification:
    """Reads the single forced `record_evaluation` call out of a response."""
    stop_reason = getattr(message, "stop_reason", None)
    if stop_reason == "refusal":
        return refusal_classification(model, cost_cents)
    if stop_reason == "max_tokens":
        raise ClaudeOutputError("output cut off at max_tokens", cost_cents=cost_cents)
    content: list[Any] = list(getattr(message, "content", None) or [])
    calls = [block for block in content if getattr(block, "type", None) == "tool_use"]
    if not calls:
        kinds = ",".join(str(getattr(b, "type", "?")) for b in content) or "nothing"
        raise ClaudeOutputError(
            f"no tool_use block (stop_reason={stop_reason}, content={kinds})", cost_cents=cost_cents
        )
    if len(calls) > 1:
        raise ClaudeOutputError(
            f"{len(calls)} tool_use blocks, expected one", cost_cents=cost_cents
        )
    call = calls[0]
    if getattr(call, "name", None) != TOOL_NAME:
        raise ClaudeOutputError(
            f"called tool {str(getattr(call, 'name', None))[:40]!r}", cost_cents=cost_cents
        )
    try:
        evaluation = parse_tool_input(getattr(call, "input", None), content_type)
    except ClaudeOutputError as exc:
        exc.cost_cents = cost_cents
        raise
    return to_classification(evaluation, content_type, model=model, cost_cents=cost_cents)
