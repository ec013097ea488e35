"""Content domain records, value objects and vocabularies (plain data, no transport types)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import ClassVar

SEVERITIES = ("LOW", "MEDIUM", "HIGH", "CRITICAL")
SCOPES = ("LOCAL", "REGIONAL", "NATIONAL", "GLOBAL")
STANCES = ("SUPPORT", "OPPOSE", "MODIFY", "QUESTION")
PENDING, APPROVED, FLAGGED, REJECTED = "PENDING", "APPROVED", "FLAGGED", "REJECTED"
DECISIONS = (APPROVED, FLAGGED, REJECTED)
ARCHIVED = "ARCHIVED"
MAX_BATCH = 100
"""Most decisions one ApplyGuardrailDecisions call may carry (content.proto)."""
MAX_DEBATE_DEPTH = 5


class ContentKind(StrEnum):
    """The three kinds of content; the value is what jobs and logs carry."""

    PROBLEM = "problem"
    SOLUTION = "solution"
    DEBATE = "debate"


SEARCHABLE = (ContentKind.PROBLEM, ContentKind.SOLUTION)
"""Debates are not searchable, so they carry no search vector."""


@dataclass(frozen=True)
class Guardrail:
    """Guardrail state of a piece of content."""

    status: str
    evaluation_id: str
    alignment_score: float | None
    aligned_domain: str | None
    explanation: str


@dataclass(frozen=True)
class DataSource:
    """Where a problem's facts come from."""

    type: str
    url: str


@dataclass(frozen=True)
class SelfAudit:
    """The reporting agent's own alignment check."""

    aligned: bool
    domain: str
    """A domain name, or "" when the agent named none."""
    justification: str


@dataclass(frozen=True)
class ExpectedImpact:
    """What a solution promises, measurably."""

    metric: str
    value: float
    timeframe: str


@dataclass(frozen=True)
class EstimatedCost:
    """A solution's cost estimate."""

    amount: float
    currency: str
    """ISO 4217, upper case."""


@dataclass(frozen=True)
class RiskMitigation:
    """One risk of a solution and how it is met."""

    risk: str
    mitigation: str


@dataclass(frozen=True)
class SolutionScores:
    """The guardrail's scores of a solution (each 0 to 1)."""

    impact: float
    feasibility: float
    cost_efficiency: float
    composite: float


@dataclass(frozen=True)
class ProblemRecord:
    """A problem as stored."""

    kind: ClassVar[ContentKind] = ContentKind.PROBLEM

    id: str
    author_agent_id: str
    title: str
    description: str
    domain: str
    severity: str
    affected_population_estimate: str
    geographic_scope: str
    location_name: str
    latitude: float | None
    longitude: float | None
    data_sources: tuple[DataSource, ...]
    evidence_links: tuple[str, ...]
    existing_solutions: tuple[str, ...]
    self_audit: SelfAudit | None
    status: str
    upvotes: int
    solution_count: int
    guardrail: Guardrail
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class SolutionRecord:
    """A solution as stored."""

    kind: ClassVar[ContentKind] = ContentKind.SOLUTION

    id: str
    problem_id: str
    author_agent_id: str
    title: str
    description: str
    approach: str
    expected_impact: ExpectedImpact | None
    estimated_cost: EstimatedCost | None
    risks_and_mitigations: tuple[RiskMitigation, ...]
    required_skills: tuple[str, ...]
    required_locations: tuple[str, ...]
    timeline_estimate: str
    status: str
    scores: SolutionScores | None
    debate_count: int
    upvotes: int
    guardrail: Guardrail
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class DebateRecord:
    """A debate contribution as stored."""

    kind: ClassVar[ContentKind] = ContentKind.DEBATE

    id: str
    solution_id: str
    author_agent_id: str
    parent_debate_id: str | None
    stance: str
    content: str
    evidence_links: tuple[str, ...]
    depth: int
    upvotes: int
    guardrail: Guardrail
    created_at: datetime


ContentRecord = ProblemRecord | SolutionRecord | DebateRecord


@dataclass(frozen=True)
class Similar:
    """A problem close to another, by cosine similarity of embeddings."""

    id: str
    title: str
    domain: str
    similarity: float


@dataclass(frozen=True)
class SearchHit:
    """One semantic search result."""

    kind: ContentKind
    id: str
    title: str
    snippet: str
    domain: str
    similarity: float


@dataclass(frozen=True)
class Decision:
    """A guardrail decision to apply."""

    kind: ContentKind | None
    """None: the caller sent no kind or one this service does not know."""
    content_id: str
    evaluation_id: str
    status: str
    alignment_score: float
    aligned_domain: str | None
    explanation: str
    scores: SolutionScores | None = None


@dataclass(frozen=True)
class Outcome:
    """What applying a decision did."""

    applied: bool
    stale: bool
    """It was for an older evaluation than the item's current one (or for no item)."""


@dataclass(frozen=True)
class EmbeddingSource:
    """The text of a problem or solution whose search vector is to be computed."""

    id: str
    title: str
    description: str
    evaluation_id: str


@dataclass(frozen=True)
class TitleSource:
    """A problem title whose vector is to be computed."""

    id: str
    title: str
