"""Content domain records and vocabularies (plain data, no transport types)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

SEVERITIES = ("LOW", "MEDIUM", "HIGH", "CRITICAL")
SCOPES = ("LOCAL", "REGIONAL", "NATIONAL", "GLOBAL")
STANCES = ("SUPPORT", "OPPOSE", "MODIFY", "QUESTION")
PENDING, APPROVED, FLAGGED, REJECTED = "PENDING", "APPROVED", "FLAGGED", "REJECTED"
DECISIONS = (APPROVED, FLAGGED, REJECTED)
MAX_BATCH = 100
"""Most decisions one ApplyGuardrailDecisions call may carry (content.proto)."""
MAX_DEBATE_DEPTH = 5


@dataclass(frozen=True)
class Guardrail:
    """Guardrail state of a piece of content."""

    status: str
    evaluation_id: str
    alignment_score: float | None
    aligned_domain: str | None
    explanation: str


@dataclass(frozen=True)
class ProblemRecord:
    """A problem as stored."""

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
    data_sources: list[dict[str, str]]
    evidence_links: list[str]
    existing_solutions: list[str]
    self_audit: dict[str, Any] | None
    status: str
    upvotes: int
    solution_count: int
    guardrail: Guardrail
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class SolutionRecord:
    """A solution as stored."""

    id: str
    problem_id: str
    author_agent_id: str
    title: str
    description: str
    approach: str
    expected_impact: dict[str, Any] | None
    estimated_cost: tuple[float, str] | None
    risks_and_mitigations: list[dict[str, str]]
    required_skills: list[str]
    required_locations: list[str]
    timeline_estimate: str
    status: str
    scores: tuple[float, float, float, float] | None
    debate_count: int
    upvotes: int
    guardrail: Guardrail
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class DebateRecord:
    """A debate contribution as stored."""

    id: str
    solution_id: str
    author_agent_id: str
    parent_debate_id: str | None
    stance: str
    content: str
    evidence_links: list[str]
    depth: int
    upvotes: int
    guardrail: Guardrail
    created_at: datetime


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

    kind: str
    id: str
    title: str
    snippet: str
    domain: str
    similarity: float


@dataclass(frozen=True)
class Decision:
    """A guardrail decision to apply."""

    kind: str
    content_id: str
    evaluation_id: str
    status: str
    alignment_score: float
    aligned_domain: str | None
    explanation: str
    scores: tuple[float, float, float, float] | None = None
