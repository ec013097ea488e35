"""What every Layer B classifier takes and returns, and how it fails."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class ContentType(StrEnum):
    """The kinds of agent content the guardrail evaluates."""

    PROBLEM = "problem"
    SOLUTION = "solution"
    DEBATE = "debate"
    MISSION = "mission"


class HarmRisk(StrEnum):
    """How likely the content is to cause harm if published."""

    NONE = "none"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@dataclass(frozen=True)
class ContentItem:
    """One piece of content as the classifier sees it (already past Layer A)."""

    content_type: ContentType
    title: str
    """Empty for debates."""
    body: str
    """Description (problems), description + approach (solutions), content (debates)."""
    claimed_domain: str | None = None
    """The domain the author chose (one of the 15), when the content type has one."""


@dataclass(frozen=True)
class SolutionScores:
    """Quality scores of a solution, each 0-100; composite is 0.40/0.35/0.25 weighted."""

    impact: float
    feasibility: float
    cost_efficiency: float

    @property
    def composite(self) -> float:
        """0.40 impact + 0.35 feasibility + 0.25 cost efficiency."""
        return round(0.40 * self.impact + 0.35 * self.feasibility + 0.25 * self.cost_efficiency, 2)


@dataclass(frozen=True)
class Classification:
    """A classifier's verdict."""

    aligned_domain: str | None
    """The best-fitting of the 15 domains, or None when the content fits none (off-topic)."""
    alignment_score: float
    """0-1: how clearly the content is social-good work in `aligned_domain`."""
    harm_risk: HarmRisk
    """Risk of harm; MEDIUM and HIGH never auto-approve."""
    harm_categories: tuple[str, ...] = ()
    """Which of the 12 forbidden categories, if any, the classifier suspects."""
    solution_scores: SolutionScores | None = None
    """Present for solutions."""
    reasoning: str = ""
    """One or two sentences for the review queue; never shown to the author verbatim."""
    model: str = ""
    """Which model produced it (e.g. "local-minilm-exemplars-v1", "claude-haiku-4-5")."""
    cost_cents: float = 0.0
    """What the call cost, for the daily budget (0 for the local classifier)."""
    uncertain: bool = False
    """True when the classifier cannot decide; the item goes to human review."""
    extra: dict[str, float] = field(default_factory=dict)
    """Diagnostics (e.g. per-domain similarities) for the evaluation record."""


class ClassifierError(Exception):
    """Classification failed; `retryable` says whether a later attempt may succeed."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class Classifier(Protocol):
    """Scores one item. Implementations are safe to share across concurrent jobs."""

    name: str
    """Stable identifier, recorded with every evaluation."""

    async def classify(self, item: ContentItem) -> Classification:
        """The verdict; raises ClassifierError (retryable or not) instead of guessing."""
        ...
