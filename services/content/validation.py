"""Every check of content input, in one place; each failure names its proto field.

A `valid_*` function raises INVALID_ARGUMENT listing every bad field of the request, or returns
the command normalized (text trimmed, currency upper-cased) for the stores.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

from services.content.commands import (
    NewDebate,
    NewProblem,
    NewSolution,
    ProblemChanges,
    SearchQuery,
    SolutionChanges,
)
from services.content.model import (
    DECISIONS,
    MAX_BATCH,
    SCOPES,
    SEARCHABLE,
    SEVERITIES,
    STANCES,
    Decision,
    EstimatedCost,
    ExpectedImpact,
)
from services.core import errors
from services.core.domains import DOMAINS
from services.core.ids import parse_uuid
from services.core.validation import Violations, check_required_text, check_text, check_url

MAX_SIMILAR = 20
MAX_SEARCH_RESULTS = 100


def check_choice(value: str, choices: Sequence[str], out: Violations, field: str) -> None:
    """One of `choices` (an unset or unknown enum arrives as "")."""
    if value not in choices:
        out.add(field, f"must be one of {', '.join(c.upper() for c in choices)}")


def check_domain(value: str, out: Violations, field: str = "domain") -> None:
    """One of the 15 domains."""
    if value not in DOMAINS:
        out.add(field, "must be one of the 15 domains")


def check_list(
    values: Sequence[str], out: Violations, field: str, *, max_items: int, max_length: int
) -> None:
    """At most `max_items` entries of at most `max_length` characters."""
    if len(values) > max_items:
        out.add(field, f"must have at most {max_items} entries")
        return
    for i, value in enumerate(values):
        check_text(value, out, f"{field}[{i}]", max_length)


def check_urls(values: Sequence[str], out: Violations, field: str, *, max_items: int) -> None:
    """At most `max_items` http(s) URLs."""
    if len(values) > max_items:
        out.add(field, f"must have at most {max_items} URLs")
        return
    for i, value in enumerate(values):
        check_url(value, out, f"{field}[{i}]")


def check_coordinates(latitude: float | None, longitude: float | None, out: Violations) -> None:
    """Both or neither; in range; finite."""
    if (latitude is None) != (longitude is None):
        out.add(
            "latitude" if latitude is None else "longitude", "latitude and longitude go together"
        )
        return
    if latitude is not None and not -90 <= latitude <= 90:
        out.add("latitude", "must be between -90 and 90")
    if longitude is not None and not -180 <= longitude <= 180:
        out.add("longitude", "must be between -180 and 180")


def _problem_fields(fields: NewProblem | ProblemChanges, out: Violations) -> None:
    """The fields a report and an edit share; in an edit only those sent (not None)."""
    if fields.title is not None:
        check_required_text(fields.title, out, "title", 10, 500)
    if fields.description is not None:
        check_required_text(fields.description, out, "description", 50, 10000)
    if fields.domain is not None:
        check_domain(fields.domain, out)
    if fields.severity is not None:
        check_choice(fields.severity, SEVERITIES, out, "severity")
    if fields.geographic_scope is not None:
        check_choice(fields.geographic_scope, SCOPES, out, "geographic_scope")
    if fields.affected_population_estimate is not None:
        check_text(fields.affected_population_estimate, out, "affected_population_estimate", 100)
    if fields.location_name is not None:
        check_text(fields.location_name, out, "location_name", 200)
    check_coordinates(fields.latitude, fields.longitude, out)


def valid_new_problem(new: NewProblem) -> NewProblem:
    """A report's fields checked; title and description trimmed."""
    out = Violations()
    _problem_fields(new, out)
    if len(new.data_sources) > 20:
        out.add("data_sources", "must have at most 20 entries")
    for i, source in enumerate(new.data_sources[:20]):
        check_text(source.type, out, f"data_sources[{i}].type", 50)
        check_url(source.url, out, f"data_sources[{i}].url")
    check_urls(new.evidence_links, out, "evidence_links", max_items=20)
    check_list(new.existing_solutions, out, "existing_solutions", max_items=20, max_length=500)
    if new.self_audit is not None:
        if new.self_audit.domain:
            check_domain(new.self_audit.domain, out, "self_audit.domain")
        check_text(new.self_audit.justification, out, "self_audit.justification", 2000)
    out.raise_if_any()
    return replace(new, title=new.title.strip(), description=new.description.strip())


def valid_problem_changes(changes: ProblemChanges) -> ProblemChanges:
    """An edit's fields checked (those sent); title and description trimmed."""
    out = Violations()
    _problem_fields(changes, out)
    out.raise_if_any()
    trimmed = {
        name: text.strip()
        for name in ("title", "description")
        if (text := getattr(changes, name)) is not None
    }
    return replace(changes, **trimmed)


def _check_impact(impact: ExpectedImpact | None, out: Violations) -> None:
    if impact is not None:
        check_text(impact.metric, out, "expected_impact.metric", 200)
        check_text(impact.timeframe, out, "expected_impact.timeframe", 100)
        if not math.isfinite(impact.value):
            out.add("expected_impact.value", "must be a finite number")


def _check_cost(cost: EstimatedCost | None, out: Violations) -> None:
    if cost is not None:
        if not math.isfinite(cost.amount) or cost.amount < 0 or cost.amount >= 1e12:
            out.add("estimated_cost.amount", "must be between 0 and 10^12")
        if len(cost.currency) != 3 or not cost.currency.isalpha():
            out.add("estimated_cost.currency", "must be a 3-letter ISO 4217 code")


def _solution_fields(fields: NewSolution | SolutionChanges, out: Violations) -> None:
    if fields.title is not None:
        check_required_text(fields.title, out, "title", 10, 500)
    if fields.description is not None:
        check_required_text(fields.description, out, "description", 50, 10000)
    if fields.approach is not None:
        check_required_text(fields.approach, out, "approach", 50, 20000)
    if fields.timeline_estimate is not None:
        check_text(fields.timeline_estimate, out, "timeline_estimate", 100)
    _check_impact(fields.expected_impact, out)
    _check_cost(fields.estimated_cost, out)


def _trim_solution(fields: NewSolution | SolutionChanges) -> dict[str, object]:
    trimmed: dict[str, object] = {
        name: text.strip()
        for name in ("title", "description", "approach")
        if (text := getattr(fields, name)) is not None
    }
    if fields.estimated_cost is not None:
        cost = fields.estimated_cost
        trimmed["estimated_cost"] = EstimatedCost(cost.amount, cost.currency.upper())
    return trimmed


def valid_new_solution(new: NewSolution) -> NewSolution:
    """A proposal's fields checked; text trimmed, currency upper case."""
    out = Violations()
    _solution_fields(new, out)
    risks = new.risks_and_mitigations
    if len(risks) > 10:
        out.add("risks_and_mitigations", "must have at most 10 entries")
    for i, risk in enumerate(risks[:10]):
        check_text(risk.risk, out, f"risks_and_mitigations[{i}].risk", 500)
        check_text(risk.mitigation, out, f"risks_and_mitigations[{i}].mitigation", 500)
    check_list(new.required_skills, out, "required_skills", max_items=20, max_length=100)
    check_list(new.required_locations, out, "required_locations", max_items=10, max_length=200)
    out.raise_if_any()
    return replace(new, **_trim_solution(new))  # type: ignore[arg-type]


def valid_solution_changes(changes: SolutionChanges) -> SolutionChanges:
    """An edit's fields checked (those sent); text trimmed, currency upper case."""
    out = Violations()
    _solution_fields(changes, out)
    out.raise_if_any()
    return replace(changes, **_trim_solution(changes))  # type: ignore[arg-type]


def valid_new_debate(new: NewDebate) -> NewDebate:
    """A contribution's fields checked; its content trimmed."""
    out = Violations()
    check_choice(new.stance, STANCES, out, "stance")
    check_required_text(new.content, out, "content", 50, 10000)
    check_urls(new.evidence_links, out, "evidence_links", max_items=10)
    out.raise_if_any()
    return replace(new, content=new.content.strip())


def valid_search(query: SearchQuery) -> SearchQuery:
    """A search checked; limit 0 means 20."""
    out = Violations()
    check_required_text(query.text, out, "q", 2, 500)
    if query.kind is not None and query.kind not in SEARCHABLE:
        out.add("kind", "must be PROBLEM or SOLUTION (debates are not searchable)")
    out.raise_if_any()
    limit = query.limit or 20
    if not 1 <= limit <= MAX_SEARCH_RESULTS:
        raise errors.InvalidArgument.one("limit", f"must be between 1 and {MAX_SEARCH_RESULTS}")
    return replace(query, limit=limit)


def valid_similar_limit(limit: int) -> int:
    """How many similar problems to list; 0 means 5."""
    limit = limit or 5
    if not 1 <= limit <= MAX_SIMILAR:
        raise errors.InvalidArgument.one("limit", f"must be between 1 and {MAX_SIMILAR}")
    return limit


def _decision_violations(decision: Decision, prefix: str) -> list[errors.FieldViolation]:
    out = Violations()
    if decision.kind is None:
        out.add(f"{prefix}kind", "must be PROBLEM, SOLUTION or DEBATE")
    if parse_uuid(decision.content_id) is None:
        out.add(f"{prefix}content_id", "must be a UUID")
    if parse_uuid(decision.evaluation_id) is None:
        out.add(f"{prefix}evaluation_id", "must be a UUID")
    if decision.status not in DECISIONS:
        out.add(f"{prefix}status", "must be APPROVED, FLAGGED or REJECTED")
    if not 0 <= decision.alignment_score <= 1:
        out.add(f"{prefix}alignment_score", "must be between 0 and 1")
    return out.items


def check_decisions(decisions: Sequence[Decision], *, prefix: str | None) -> None:
    """Every decision of a batch (fields named `prefix[i].…`; a single one when `prefix` is
    None); one bad decision rejects them all."""
    if prefix is not None and not 1 <= len(decisions) <= MAX_BATCH:
        raise errors.InvalidArgument.one(prefix, f"must have 1 to {MAX_BATCH} decisions")
    out = [
        violation
        for i, decision in enumerate(decisions)
        for violation in _decision_violations(decision, "" if prefix is None else f"{prefix}[{i}].")
    ]
    if out:
        raise errors.InvalidArgument(out)


def check_standing_request(author_agent_id: str, at_most: int) -> None:
    """GetAuthorStanding's fields."""
    if parse_uuid(author_agent_id) is None:
        raise errors.InvalidArgument.one("author_agent_id", "must be a UUID")
    if at_most < 0:
        raise errors.InvalidArgument.one("at_most", "must not be negative")
