"""Proto ↔ domain conversions of the content service (used by the servicers only)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from betterworld.common.v1 import common_pb2
from betterworld.content.v1 import content_pb2 as pb
from google.api import httpbody_pb2

from services.content.model import (
    ContentKind,
    DebateRecord,
    Guardrail,
    ProblemRecord,
    SearchHit,
    Similar,
    SolutionRecord,
)
from services.content.visibility import is_author
from services.core import errors
from services.core.context import Principal
from services.core.convert import (
    content_kind_name,
    content_kind_value,
    domain_value,
    json_body,
    page_meta,
    status_value,
    timestamp,
)
from services.core.pagination import Page

Response = TypeVar("Response")
Rendered = TypeVar("Rendered")


def list_response(
    page: Page,
    viewer: Principal | None,
    item: Callable[[Any, Principal | None], Any],
    response: Callable[..., Response],
) -> Response:
    """The list response of `page` as `viewer` sees it.

    A public page may be a cached one shared by many requests: its rendering for callers who
    wrote none of its items (what almost every caller gets) is built once and reused.
    """
    if _authored_by(page, viewer):
        return _render(page, viewer, item, response)
    return _shared(page, _name(response), lambda: _render(page, None, item, response))


def list_json(
    page: Page,
    viewer: Principal | None,
    item: Callable[[Any, Principal | None], Any],
    response: Callable[..., Any],
) -> httpbody_pb2.HttpBody:
    """`list_response` as the HTTP API's JSON body; a shared page's bytes are built once."""
    if _authored_by(page, viewer):
        return json_body(_render(page, viewer, item, response))

    def build() -> httpbody_pb2.HttpBody:
        return json_body(list_response(page, None, item, response))

    return _shared(page, _name(response) + " JSON", build)


def _authored_by(page: Page, viewer: Principal | None) -> bool:
    return any(is_author(record, viewer) for record in page.items)


def _render(
    page: Page,
    viewer: Principal | None,
    item: Callable[[Any, Principal | None], Any],
    response: Callable[..., Response],
) -> Response:
    return response(data=[item(r, viewer) for r in page.items], meta=page_meta(page))


def _name(response: Callable[..., Any]) -> str:
    return getattr(response, "__name__", repr(response))


def _shared(page: Page, key: str, build: Callable[[], Rendered]) -> Rendered:
    rendered: Rendered | None = page.renderings.get(key)
    if rendered is None:
        rendered = build()
        page.renderings[key] = rendered
    return rendered


def _guardrail(g: Guardrail) -> pb.GuardrailOutcome:
    return pb.GuardrailOutcome(
        status=status_value(g.status),
        evaluation_id=g.evaluation_id,
        alignment_score=g.alignment_score or 0.0,
        aligned_domain=domain_value(g.aligned_domain),
        explanation=g.explanation,
    )


def problem(record: ProblemRecord, viewer: Principal | None) -> pb.Problem:
    """The Problem message; the guardrail outcome only for its author."""
    message = pb.Problem(
        problem_id=record.id,
        author_agent_id=record.author_agent_id,
        title=record.title,
        description=record.description,
        domain=domain_value(record.domain),
        severity=pb.Severity.Value(record.severity),
        affected_population_estimate=record.affected_population_estimate,
        geographic_scope=pb.GeographicScope.Value(record.geographic_scope),
        location_name=record.location_name,
        data_sources=[pb.DataSource(type=s.type, url=s.url) for s in record.data_sources],
        evidence_links=record.evidence_links,
        existing_solutions=record.existing_solutions,
        status=pb.Problem.Status.Value(record.status),
        guardrail_status=common_pb2.GuardrailStatus.Value(record.guardrail.status),
        guardrail_evaluation_id=record.guardrail.evaluation_id,
        upvotes=record.upvotes,
        solution_count=record.solution_count,
        created_at=timestamp(record.created_at),
        updated_at=timestamp(record.updated_at),
    )
    if record.latitude is not None and record.longitude is not None:
        message.location.CopyFrom(
            common_pb2.GeoPoint(latitude=record.latitude, longitude=record.longitude)
        )
    if record.self_audit:
        message.self_audit.CopyFrom(
            pb.SelfAudit(
                aligned=record.self_audit.aligned,
                domain=domain_value(record.self_audit.domain or None),
                justification=record.self_audit.justification,
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
            pb.RiskMitigation(risk=r.risk, mitigation=r.mitigation)
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
        created_at=timestamp(record.created_at),
        updated_at=timestamp(record.updated_at),
    )
    if record.expected_impact:
        impact = record.expected_impact
        message.expected_impact.CopyFrom(
            pb.ExpectedImpact(metric=impact.metric, value=impact.value, timeframe=impact.timeframe)
        )
    if record.estimated_cost:
        cost = record.estimated_cost
        message.estimated_cost.CopyFrom(
            pb.EstimatedCost(amount=cost.amount, currency=cost.currency)
        )
    if record.scores:
        scores = record.scores
        message.scores.CopyFrom(
            pb.SolutionScores(
                impact=scores.impact,
                feasibility=scores.feasibility,
                cost_efficiency=scores.cost_efficiency,
                composite=scores.composite,
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
        created_at=timestamp(record.created_at),
    )


def similar(item: Similar) -> pb.SimilarProblem:
    """A SimilarProblem message."""
    return pb.SimilarProblem(
        problem_id=item.id,
        title=item.title,
        domain=domain_value(item.domain),
        similarity=item.similarity,
    )


def hit(item: SearchHit) -> pb.SearchResult:
    """A SearchResult message."""
    return pb.SearchResult(
        kind=content_kind_value(item.kind),
        id=item.id,
        title=item.title,
        snippet=item.snippet,
        domain=domain_value(item.domain),
        similarity=item.similarity,
    )


def kind(value: int) -> ContentKind | None:
    """The content kind of a ContentKind number; None when unset or unknown. A kind of the
    contract this service does not hold (MISSION) is INVALID_ARGUMENT naming `kind`."""
    name = content_kind_name(value)
    if not name:
        return None
    try:
        return ContentKind(name)
    except ValueError:
        raise errors.InvalidArgument.one("kind", "must be PROBLEM, SOLUTION or DEBATE") from None
