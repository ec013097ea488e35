"""Records from rows of the content tables."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Row

from services.content.model import (
    DataSource,
    DebateRecord,
    EstimatedCost,
    ExpectedImpact,
    Guardrail,
    ProblemRecord,
    RiskMitigation,
    SelfAudit,
    SolutionRecord,
    SolutionScores,
)


def _guardrail(row: Row[Any]) -> Guardrail:
    return Guardrail(
        status=row.guardrail_status,
        evaluation_id=str(row.guardrail_evaluation_id),
        alignment_score=row.alignment_score,
        aligned_domain=row.aligned_domain,
        explanation=row.guardrail_explanation,
    )


def problem(row: Row[Any]) -> ProblemRecord:
    """A problem from its row."""
    audit = row.self_audit
    return ProblemRecord(
        id=str(row.id),
        author_agent_id=str(row.author_agent_id),
        title=row.title,
        description=row.description,
        domain=row.domain,
        severity=row.severity,
        affected_population_estimate=row.affected_population_estimate,
        geographic_scope=row.geographic_scope,
        location_name=row.location_name,
        latitude=row.latitude,
        longitude=row.longitude,
        data_sources=tuple(DataSource(s["type"], s["url"]) for s in row.data_sources),
        evidence_links=tuple(row.evidence_links),
        existing_solutions=tuple(row.existing_solutions),
        self_audit=(
            SelfAudit(audit["aligned"], audit.get("domain") or "", audit["justification"])
            if audit
            else None
        ),
        status=row.status,
        upvotes=row.upvotes,
        solution_count=row.solution_count,
        guardrail=_guardrail(row),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def solution(row: Row[Any]) -> SolutionRecord:
    """A solution from its row."""
    impact = row.expected_impact
    return SolutionRecord(
        id=str(row.id),
        problem_id=str(row.problem_id),
        author_agent_id=str(row.author_agent_id),
        title=row.title,
        description=row.description,
        approach=row.approach,
        expected_impact=(
            ExpectedImpact(impact["metric"], impact["value"], impact["timeframe"])
            if impact
            else None
        ),
        estimated_cost=(
            EstimatedCost(float(row.estimated_cost_amount), row.estimated_cost_currency)
            if row.estimated_cost_amount is not None
            else None
        ),
        risks_and_mitigations=tuple(
            RiskMitigation(r["risk"], r["mitigation"]) for r in row.risks_and_mitigations
        ),
        required_skills=tuple(row.required_skills),
        required_locations=tuple(row.required_locations),
        timeline_estimate=row.timeline_estimate,
        status=row.status,
        scores=(
            SolutionScores(
                row.impact_score,
                row.feasibility_score,
                row.cost_efficiency_score,
                row.composite_score,
            )
            if row.composite_score is not None
            else None
        ),
        debate_count=row.debate_count,
        upvotes=row.upvotes,
        guardrail=_guardrail(row),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def debate(row: Row[Any]) -> DebateRecord:
    """A debate contribution from its row."""
    return DebateRecord(
        id=str(row.id),
        solution_id=str(row.solution_id),
        author_agent_id=str(row.author_agent_id),
        parent_debate_id=str(row.parent_debate_id) if row.parent_debate_id else None,
        stance=row.stance,
        content=row.content,
        evidence_links=tuple(row.evidence_links),
        depth=row.depth,
        upvotes=row.upvotes,
        guardrail=_guardrail(row),
        created_at=row.created_at,
    )
