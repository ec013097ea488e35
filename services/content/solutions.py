"""Solutions: propose, read, list, edit and archive."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select

from services.content import store
from services.content.deps import ContentDeps
from services.content.model import APPROVED, PENDING, SolutionRecord
from services.content.moderation import back_to_moderation, new_evaluation_id, submit
from services.content.problems import get_problem
from services.content.tables import solutions
from services.content.validation import check_list
from services.content.visibility import require_agent, require_author, require_visible
from services.core import errors
from services.core.context import Principal
from services.core.db import autocommit
from services.core.ids import parse_uuid
from services.core.pagination import Page, page_limit, paginate
from services.core.validation import Violations, check_required_text, check_text


def _check(fields: dict[str, Any], out: Violations, *, partial: bool) -> None:
    def present(name: str) -> bool:
        return not partial or fields.get(name) is not None

    if present("title"):
        check_required_text(fields["title"], out, "title", 10, 500)
    if present("description"):
        check_required_text(fields["description"], out, "description", 50, 10000)
    if present("approach"):
        check_required_text(fields["approach"], out, "approach", 50, 20000)
    if present("timeline_estimate"):
        check_text(fields.get("timeline_estimate") or "", out, "timeline_estimate", 100)
    impact = fields.get("expected_impact")
    if impact is not None:
        check_text(impact["metric"], out, "expected_impact.metric", 200)
        check_text(impact["timeframe"], out, "expected_impact.timeframe", 100)
        if not math.isfinite(impact["value"]):
            out.add("expected_impact.value", "must be a finite number")
    cost = fields.get("estimated_cost")
    if cost is not None:
        amount, currency = cost
        if not math.isfinite(amount) or amount < 0 or amount >= 1e12:
            out.add("estimated_cost.amount", "must be between 0 and 10^12")
        if len(currency) != 3 or not currency.isalpha():
            out.add("estimated_cost.currency", "must be a 3-letter ISO 4217 code")
    risks = fields.get("risks_and_mitigations") or []
    if len(risks) > 10:
        out.add("risks_and_mitigations", "must have at most 10 entries")
    for i, risk in enumerate(risks[:10]):
        check_text(risk["risk"], out, f"risks_and_mitigations[{i}].risk", 500)
        check_text(risk["mitigation"], out, f"risks_and_mitigations[{i}].mitigation", 500)
    check_list(fields.get("required_skills") or [], out, "required_skills",
               max_items=20, max_length=100)  # fmt: skip
    check_list(fields.get("required_locations") or [], out, "required_locations",
               max_items=10, max_length=200)  # fmt: skip


def _columns(fields: dict[str, Any]) -> dict[str, Any]:
    values = {
        name: fields[name]
        for name in ("title", "description", "approach", "expected_impact", "timeline_estimate",
                     "risks_and_mitigations", "required_skills", "required_locations")
        if fields.get(name) is not None
    }  # fmt: skip
    for name in ("title", "description", "approach"):
        if name in values:
            values[name] = values[name].strip()
    if fields.get("estimated_cost") is not None:
        amount, currency = fields["estimated_cost"]
        values.update(estimated_cost_amount=amount, estimated_cost_currency=currency.upper())
    return values


async def create_solution(
    deps: ContentDeps, principal: Principal | None, problem_id: str, fields: dict[str, Any]
) -> SolutionRecord:
    """Stores the solution PENDING and queues its evaluation."""
    agent = require_agent(principal)
    out = Violations()
    _check(fields, out, partial=False)
    out.raise_if_any()
    problem = await get_problem(deps, principal, problem_id)
    if problem.status == "ARCHIVED":
        raise errors.FailedPrecondition(
            "the problem is archived; it takes no new solutions", reason="PROBLEM_ARCHIVED"
        )
    async with autocommit(deps.engine) as conn:  # one INSERT: atomic by itself
        record: SolutionRecord = await store.insert(
            conn,
            "solution",
            {
                **_columns(fields),
                "problem_id": UUID(problem.id),
                "author_agent_id": UUID(agent.id),
                "guardrail_status": PENDING,
                "guardrail_evaluation_id": new_evaluation_id(),
            },
        )
    await submit(deps, "solution", record, principal)
    return record


async def get_solution(
    deps: ContentDeps, principal: Principal | None, solution_id: str
) -> SolutionRecord:
    """A solution the caller may see."""
    parsed = parse_uuid(solution_id)
    record = None
    if parsed is not None:
        async with autocommit(deps.engine) as conn:
            record = await store.get(conn, "solution", parsed)
    result: SolutionRecord = require_visible(record, principal, "solution", solution_id)
    return result


async def list_solutions(
    deps: ContentDeps,
    principal: Principal | None,
    *,
    problem_id: str,
    status: str | None,
    mine: bool,
    by_score: bool,
    limit: int,
    cursor: str,
) -> Page[SolutionRecord]:
    """Approved solutions (or the caller's own with `mine`), newest or best first."""
    size = page_limit(limit)
    parsed = parse_uuid(problem_id) if problem_id else None
    if problem_id and parsed is None:
        raise errors.InvalidArgument.one("problem_id", "must be a UUID")
    agent = require_agent(principal) if mine else None
    owner = agent.id if agent else ""
    scope = f"solutions|{problem_id}|{status}|{owner}|{by_score}"
    deps.cursors.decode(scope, cursor)  # a bad cursor fails before the page cache is asked

    async def fetch(after: list[Any] | None, count: int) -> Sequence[SolutionRecord]:
        # Built here, not before the cache lookup (see list_problems).
        query = select(*store.row_columns(solutions))
        if parsed:
            query = query.where(solutions.c.problem_id == parsed)
        query = query.where(
            solutions.c.status == status if status else solutions.c.status != "ARCHIVED"
        )
        if agent:
            query = query.where(solutions.c.author_agent_id == UUID(agent.id))
        else:
            query = query.where(solutions.c.guardrail_status == APPROVED)
        if by_score:
            query = query.where(solutions.c.composite_score.is_not(None))
            columns = [solutions.c.composite_score, solutions.c.created_at, solutions.c.id]
        else:
            columns = [solutions.c.created_at, solutions.c.id]
        decoded = None
        if after:
            decoded = [*after[:-2], datetime.fromisoformat(after[-2]), UUID(after[-1])]
        query = store.keyset(query, columns, decoded)
        query = query.order_by(*(c.desc() for c in columns)).limit(count)
        rows: list[SolutionRecord] = await store.fetch(deps.engine, "solution", query)
        return rows

    def key(last: SolutionRecord) -> list[Any]:
        lead = [last.scores[3]] if by_score and last.scores else []
        return [*lead, last.created_at.isoformat(), last.id]

    async def load() -> Page[SolutionRecord]:
        return await paginate(
            fetch, cursors=deps.cursors, scope=scope, cursor=cursor, limit=size, key=key
        )

    return await load() if mine else await deps.pages.get((scope, size, cursor), load)


async def update_solution(
    deps: ContentDeps, principal: Principal | None, solution_id: str, fields: dict[str, Any]
) -> SolutionRecord:
    """Applies the fields sent; the solution is PENDING again under a new evaluation."""
    out = Violations()
    _check(fields, out, partial=True)
    out.raise_if_any()
    parsed = parse_uuid(solution_id)
    async with deps.engine.begin() as conn:
        current = await store.get(conn, "solution", parsed, lock=True) if parsed else None
        current = require_author(current, principal, "solution", solution_id)
        assert parsed is not None
        if current.status == "ARCHIVED":
            raise errors.FailedPrecondition("an archived solution cannot change", reason="ARCHIVED")
        values = _columns(fields)
        if not values:
            return current
        if "title" in values or "description" in values:
            values.update(embedding=None, embedding_model=None)  # the worker embeds the new text
        if current.guardrail.status == APPROVED:
            await store.adjust_parent_counter(conn, "solution", current, -1)
        values.update(back_to_moderation())
        record: SolutionRecord = await store.change(conn, "solution", parsed, values)
    deps.pages.invalidate()
    await submit(deps, "solution", record, principal)
    return record


async def archive_solution(
    deps: ContentDeps, principal: Principal | None, solution_id: str
) -> SolutionRecord:
    """Archives the solution; an approved one stops counting for its problem."""
    parsed = parse_uuid(solution_id)
    async with deps.engine.begin() as conn:
        current = await store.get(conn, "solution", parsed, lock=True) if parsed else None
        current = require_author(current, principal, "solution", solution_id)
        assert parsed is not None
        if current.status == "ARCHIVED":
            return current
        if current.guardrail.status == APPROVED:
            await store.adjust_parent_counter(conn, "solution", current, -1)
        record: SolutionRecord = await store.change(
            conn, "solution", parsed, {"status": "ARCHIVED"}
        )
    deps.pages.invalidate()
    return record
