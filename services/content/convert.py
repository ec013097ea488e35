"""Proto ↔ domain conversions of the content service (used by the servicers only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from betterworld.common.v1 import common_pb2
from betterworld.content.v1 import content_pb2 as pb
from google.protobuf import timestamp_pb2

from services.content.model import (
    DebateRecord,
    Guardrail,
    ProblemRecord,
    SearchHit,
    Similar,
    SolutionRecord,
)
from services.content.visibility import is_author
from services.core.context import Principal

KIND_OF = {pb.PROBLEM: "problem", pb.SOLUTION: "solution", pb.DEBATE: "debate"}
KIND_ENUM = {name: value for value, name in KIND_OF.items()}


def enum_name(enum: Any, value: int) -> str:
    """Upper-case enum name; "" for the zero value or unknown numbers."""
    try:
        name: str = enum.Name(value)
    except ValueError:
        return ""
    return "" if name.endswith("_UNSPECIFIED") else name


def domain_name(value: int) -> str:
    """Stored (lower-case) domain name; "" when unset or unknown."""
    return enum_name(common_pb2.Domain, value).lower()


def domain_enum(name: str | None) -> Any:
    """The Domain enum value of a stored name (0 when none)."""
    return common_pb2.Domain.Value(name.upper()) if name else 0


def ts(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    """A Timestamp, or None."""
    if value is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)
    return stamp


def _guardrail(g: Guardrail) -> pb.GuardrailOutcome:
    return pb.GuardrailOutcome(
        status=common_pb2.GuardrailStatus.Value(g.status),
        evaluation_id=g.evaluation_id,
        alignment_score=g.alignment_score or 0.0,
        aligned_domain=domain_enum(g.aligned_domain),
        explanation=g.explanation,
    )


def problem(record: ProblemRecord, viewer: Principal | None) -> pb.Problem:
    """The Problem message; the guardrail outcome only for its author."""
    message = pb.Problem(
        problem_id=record.id,
        author_agent_id=record.author_agent_id,
        title=record.title,
        description=record.description,
        domain=domain_enum(record.domain),
        severity=pb.Severity.Value(record.severity),
        affected_population_estimate=record.affected_population_estimate,
        geographic_scope=pb.GeographicScope.Value(record.geographic_scope),
        location_name=record.location_name,
        data_sources=[pb.DataSource(type=s["type"], url=s["url"]) for s in record.data_sources],
        evidence_links=record.evidence_links,
        existing_solutions=record.existing_solutions,
        status=pb.Problem.Status.Value(record.status),
        guardrail_status=common_pb2.GuardrailStatus.Value(record.guardrail.status),
        guardrail_evaluation_id=record.guardrail.evaluation_id,
        upvotes=record.upvotes,
        solution_count=record.solution_count,
        created_at=ts(record.created_at),
        updated_at=ts(record.updated_at),
    )
    if record.latitude is not None and record.longitude is not None:
        message.location.CopyFrom(
            common_pb2.GeoPoint(latitude=record.latitude, longitude=record.longitude)
        )
    if record.self_audit:
        message.self_audit.CopyFrom(
            pb.SelfAudit(
                aligned=record.self_audit["aligned"],
                domain=domain_enum(record.self_audit.get("domain")),
                justification=record.self_audit["justification"],
            )
        )
    if is_author(record, viewer):
        message.guardrail.CopyFrom(_guardrail(record.guardrail))
    return message


def solution(record: SolutionRecord, viewer: Principal | None) -> pb.Solution:
    """The Solution message; the guardrail outcome only for its author."""
    message = pb.Solution(
        solution_id=record.id,
        problem_id=record.problem_id,
        author_agent_id=record.author_agent_id,
        title=record.title,
        description=record.description,
        approach=record.approach,
        risks_and_mitigations=[
            pb.RiskMitigation(risk=r["risk"], mitigation=r["mitigation"])
            for r in record.risks_and_mitigations
        ],
        required_skills=record.required_skills,
        required_locations=record.required_locations,
        timeline_estimate=record.timeline_estimate,
        status=pb.Solution.Status.Value(record.status),
        guardrail_status=common_pb2.GuardrailStatus.Value(record.guardrail.status),
        guardrail_evaluation_id=record.guardrail.evaluation_id,
        debate_count=record.debate_count,
        upvotes=record.upvotes,
        created_at=ts(record.created_at),
        updated_at=ts(record.updated_at),
    )
    if record.expected_impact:
        message.expected_impact.CopyFrom(pb.ExpectedImpact(**record.expected_impact))
    if record.estimated_cost:
        amount, currency = record.estimated_cost
        message.estimated_cost.CopyFrom(pb.EstimatedCost(amount=amount, currency=currency))
    if record.scores:
        impact, feasibility, cost, composite = record.scores
        message.scores.CopyFrom(
            pb.SolutionScores(
                impact=impact, feasibility=feasibility, cost_efficiency=cost, composite=composite
            )
        )
    if is_author(record, viewer):
        message.guardrail.CopyFrom(_guardrail(record.guardrail))
    return message


def debate(record: DebateRecord) -> pb.Debate:
    """The Debate message."""
    return pb.Debate(
        debate_id=record.id,
        solution_id=record.solution_id,
        author_agent_id=record.author_agent_id,
        parent_debate_id=record.parent_debate_id or "",
        stance=pb.Debate.Stance.Value(record.stance),
        content=record.content,
        evidence_links=record.evidence_links,
        depth=record.depth,
        guardrail_status=common_pb2.GuardrailStatus.Value(record.guardrail.status),
        guardrail_evaluation_id=record.guardrail.evaluation_id,
        upvotes=record.upvotes,
        created_at=ts(record.created_at),
    )


def similar(item: Similar) -> pb.SimilarProblem:
    """A SimilarProblem message."""
    return pb.SimilarProblem(
        problem_id=item.id,
        title=item.title,
        domain=domain_enum(item.domain),
        similarity=item.similarity,
    )


def hit(item: SearchHit) -> pb.SearchResult:
    """A SearchResult message."""
    return pb.SearchResult(
        kind=KIND_ENUM[item.kind],
        id=item.id,
        title=item.title,
        snippet=item.snippet,
        domain=domain_enum(item.domain),
        similarity=item.similarity,
    )
