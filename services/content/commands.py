"""Typed requests of the content domain: the servicer builds them from messages, the domain
validates them (validation.py) and hands them to the stores.

In a change command None means "leave as it is"; an empty string or list is a value.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from services.content.model import (
    DataSource,
    EstimatedCost,
    ExpectedImpact,
    RiskMitigation,
    SelfAudit,
)


@dataclass(frozen=True)
class NewProblem:
    """Report a problem."""

    title: str
    description: str
    domain: str
    severity: str
    geographic_scope: str
    affected_population_estimate: str = ""
    location_name: str = ""
    latitude: float | None = None
    longitude: float | None = None
    data_sources: tuple[DataSource, ...] = ()
    evidence_links: tuple[str, ...] = ()
    existing_solutions: tuple[str, ...] = ()
    self_audit: SelfAudit | None = None


@dataclass(frozen=True)
class ProblemChanges:
    """Edit a problem: the fields sent."""

    title: str | None = None
    description: str | None = None
    domain: str | None = None
    severity: str | None = None
    geographic_scope: str | None = None
    affected_population_estimate: str | None = None
    location_name: str | None = None
    latitude: float | None = None
    longitude: float | None = None

    def sent(self) -> dict[str, object]:
        """The fields that change, by name."""
        return _sent(self)

    @property
    def changes_text(self) -> bool:
        """Whether the searchable text (title or description) changes."""
        return self.title is not None or self.description is not None


@dataclass(frozen=True)
class ProblemQuery:
    """Which problems a list shows, in which order."""

    status: str = "ACTIVE"
    domain: str | None = None
    severity: str | None = None
    mine: bool = False
    guardrail_status: str | None = None
    """Only with `mine`: the caller's own items in one guardrail state."""
    sort: str = "recent"
    """recent | upvotes | solutions"""


@dataclass(frozen=True)
class NewSolution:
    """Propose a solution to a problem."""

    problem_id: str
    title: str
    description: str
    approach: str
    timeline_estimate: str = ""
    expected_impact: ExpectedImpact | None = None
    estimated_cost: EstimatedCost | None = None
    risks_and_mitigations: tuple[RiskMitigation, ...] = ()
    required_skills: tuple[str, ...] = ()
    required_locations: tuple[str, ...] = ()


@dataclass(frozen=True)
class SolutionChanges:
    """Edit a solution: the fields sent."""

    title: str | None = None
    description: str | None = None
    approach: str | None = None
    timeline_estimate: str | None = None
    expected_impact: ExpectedImpact | None = None
    estimated_cost: EstimatedCost | None = None

    def sent(self) -> dict[str, object]:
        """The fields that change, by name."""
        return _sent(self)

    @property
    def changes_text(self) -> bool:
        """Whether the searchable text (title or description) changes."""
        return self.title is not None or self.description is not None


@dataclass(frozen=True)
class SolutionQuery:
    """Which solutions a list shows, in which order."""

    problem_id: str = ""
    status: str | None = None
    """None: every status but ARCHIVED."""
    mine: bool = False
    by_score: bool = False


@dataclass(frozen=True)
class NewDebate:
    """Contribute to a solution's debate."""

    solution_id: str
    stance: str
    content: str
    parent_debate_id: str = ""
    evidence_links: tuple[str, ...] = ()


@dataclass(frozen=True)
class SearchQuery:
    """A semantic search."""

    text: str
    kind: str | None = None
    """problem | solution | None (both); anything else is invalid."""
    domain: str | None = None
    limit: int = 0


def _sent(command: object) -> dict[str, object]:
    return {
        field.name: getattr(command, field.name)
        for field in fields(command)  # type: ignore[arg-type]
        if getattr(command, field.name) is not None
    }
