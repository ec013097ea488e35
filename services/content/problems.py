"""Problems: report, read, list, edit, archive, and find similar ones."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from services.content import store
from services.content.deps import ContentDeps
from services.content.model import APPROVED, PENDING, ProblemRecord, Similar
from services.content.moderation import back_to_moderation, new_evaluation_id, submit
from services.content.tables import problems
from services.content.validation import (
    check_domain,
    check_list,
    check_urls,
    problem_fields,
)
from services.content.visibility import require_agent, require_author, require_visible
from services.core import errors
from services.core.context import Principal
from services.core.db import autocommit
from services.core.ids import parse_uuid
from services.core.logging import get_logger
from services.core.pagination import Page, page_limit, paginate
from services.core.validation import Violations, check_text, check_url

log = get_logger(__name__)
MAX_DUPLICATES = 5
DUPLICATE_SIMILARITY = 0.80


async def create_problem(
    deps: ContentDeps, principal: Principal | None, fields: dict[str, Any]
) -> tuple[ProblemRecord, list[Similar]]:
    """Stores the problem PENDING, queues its evaluation, returns it with possible duplicates."""
    agent = require_agent(principal)
    out = Violations()
    problem_fields(fields, out, partial=False)
    sources = fields.get("data_sources", [])
    if len(sources) > 20:
        out.add("data_sources", "must have at most 20 entries")
    for i, source in enumerate(sources[:20]):
        check_text(source["type"], out, f"data_sources[{i}].type", 50)
        check_url(source["url"], out, f"data_sources[{i}].url")
    check_urls(fields.get("evidence_links", []), out, "evidence_links", max_items=20)
    check_list(
        fields.get("existing_solutions", []),
        out,
        "existing_solutions",
        max_items=20,
        max_length=500,
    )
    audit = fields.get("self_audit")
    if audit is not None:
        if audit["domain"]:
            check_domain(audit["domain"], out, "self_audit.domain")
        check_text(audit["justification"], out, "self_audit.justification", 2000)
    out.raise_if_any()
    # The search vector is the worker's job; the title vector is cheap and the duplicate check
    # needs it now.
    title_vector = await deps.embed_title(fields["title"].strip())

    async def store_and_queue() -> ProblemRecord:
        async with autocommit(deps.engine) as conn:  # one INSERT: atomic by itself
            record: ProblemRecord = await store.insert(
                conn,
                "problem",
                {
                    "author_agent_id": parse_uuid(agent.id),
                    "title": fields["title"].strip(),
                    "description": fields["description"].strip(),
                    "domain": fields["domain"],
                    "severity": fields["severity"],
                    "affected_population_estimate": fields.get("affected_population_estimate", ""),
                    "geographic_scope": fields["geographic_scope"],
                    "location_name": fields.get("location_name", ""),
                    "latitude": fields.get("latitude"),
                    "longitude": fields.get("longitude"),
                    "data_sources": sources,
                    "evidence_links": fields.get("evidence_links", []),
                    "existing_solutions": fields.get("existing_solutions", []),
                    "self_audit": audit,
                    "guardrail_status": PENDING,
                    "guardrail_evaluation_id": new_evaluation_id(),
                    "title_embedding": title_vector,
                    "title_embedding_model": deps.titles.model_id,
                },
            )
        await submit(deps, "problem", record, principal)
        return record

    # The duplicate query runs beside the insert: the new problem is PENDING, so it can never
    # be among the approved problems the query reads.
    stored, found = await asyncio.gather(
        store_and_queue(),
        store.similar_problems(
            deps.engine, title_vector, exclude=None, limit=MAX_DUPLICATES, by_title=True
        ),
        return_exceptions=True,
    )
    if isinstance(stored, BaseException):
        raise stored
    record = stored
    duplicates: list[Similar] = []
    if isinstance(found, Exception):
        # The problem is stored and queued: its id matters more than the advisory duplicates.
        log.warning("duplicate_check_failed", problem_id=record.id, error=type(found).__name__)
    elif isinstance(found, BaseException):
        raise found
    else:
        duplicates = found
    # Titles this close are rewordings of the same report ("Lake Merritt water quality is
    # declining" against "Declining water quality in Lake Merritt, Oakland": 0.88); related but
    # distinct problems score lower (the same decline in Lake Tahoe: 0.70).
    return record, [d for d in duplicates if d.similarity >= DUPLICATE_SIMILARITY]


async def get_problem(
    deps: ContentDeps, principal: Principal | None, problem_id: str
) -> ProblemRecord:
    """A problem the caller may see."""
    parsed = parse_uuid(problem_id)
    record = None
    if parsed is not None:
        async with autocommit(deps.engine) as conn:
            record = await store.get(conn, "problem", parsed)
    result: ProblemRecord = require_visible(record, principal, "problem", problem_id)
    return result


_SORTS = {
    "recent": [problems.c.created_at, problems.c.id],
    "upvotes": [problems.c.upvotes, problems.c.created_at, problems.c.id],
    "solutions": [problems.c.solution_count, problems.c.created_at, problems.c.id],
}


def _cursor_key(record: ProblemRecord, sort: str) -> list[Any]:
    lead = {"upvotes": [record.upvotes], "solutions": [record.solution_count]}.get(sort, [])
    return [*lead, record.created_at.isoformat(), record.id]


def _decode_key(key: list[Any], sort: str) -> list[Any]:
    from datetime import datetime
    from uuid import UUID

    lead = key[:-2] if sort != "recent" else []
    return [*lead, datetime.fromisoformat(key[-2]), UUID(key[-1])]


async def list_problems(
    deps: ContentDeps,
    principal: Principal | None,
    *,
    domain: str | None,
    severity: str | None,
    status: str,
    mine: bool,
    guardrail_status: str | None,
    sort: str,
    limit: int,
    cursor: str,
) -> Page[ProblemRecord]:
    """Approved problems, or all of the caller's own with `mine`; keyset-paginated."""
    size = page_limit(limit)
    agent = require_agent(principal) if mine else None
    owner = agent.id if agent else ""
    scope = f"problems|{domain}|{severity}|{status}|{owner}|{guardrail_status}|{sort}"
    deps.cursors.decode(scope, cursor)  # a bad cursor fails before the page cache is asked

    async def fetch(after: list[Any] | None, count: int) -> Sequence[ProblemRecord]:
        # Built here, not before the cache lookup: composing the statement costs more than
        # serving a cached page.
        query = select(*store.row_columns(problems)).where(problems.c.status == status)
        if agent:
            query = query.where(problems.c.author_agent_id == parse_uuid(agent.id))
            if guardrail_status:
                query = query.where(problems.c.guardrail_status == guardrail_status)
        else:
            query = query.where(problems.c.guardrail_status == APPROVED)
        if domain:
            query = query.where(problems.c.domain == domain)
        if severity:
            query = query.where(problems.c.severity == severity)
        columns = _SORTS[sort]
        query = store.keyset(query, columns, _decode_key(after, sort) if after else None)
        query = query.order_by(*(c.desc() for c in columns)).limit(count)
        rows: list[ProblemRecord] = await store.fetch(deps.engine, "problem", query)
        return rows

    async def load() -> Page[ProblemRecord]:
        return await paginate(
            fetch,
            cursors=deps.cursors,
            scope=scope,
            cursor=cursor,
            limit=size,
            key=lambda last: _cursor_key(last, sort),
        )

    return await load() if mine else await deps.pages.get((scope, size, cursor), load)


async def update_problem(
    deps: ContentDeps, principal: Principal | None, problem_id: str, fields: dict[str, Any]
) -> ProblemRecord:
    """Applies the fields sent; the problem gets a new evaluation and is PENDING again."""
    out = Violations()
    problem_fields(fields, out, partial=True)
    out.raise_if_any()
    parsed = parse_uuid(problem_id)
    values = {name: value for name, value in fields.items() if value is not None}
    if "title" in values:
        # The embedding takes milliseconds of CPU: only for the author's edit (checked here
        # without a lock, and again under it), and before the row lock is taken.
        async with autocommit(deps.engine) as conn:
            found = await store.get(conn, "problem", parsed) if parsed else None
        require_author(found, principal, "problem", problem_id)
        values["title_embedding"] = await deps.embed_title(values["title"])
        values["title_embedding_model"] = deps.titles.model_id
    async with deps.engine.begin() as conn:
        current = await store.get(conn, "problem", parsed, lock=True) if parsed else None
        current = require_author(current, principal, "problem", problem_id)
        assert parsed is not None
        if current.status == "ARCHIVED":
            raise errors.FailedPrecondition("an archived problem cannot change", reason="ARCHIVED")
        if not values:
            return current
        if "title" in values or "description" in values:
            values.update(embedding=None, embedding_model=None)  # the worker embeds the new text
        values.update(back_to_moderation())
        record: ProblemRecord = await store.change(conn, "problem", parsed, values)
    deps.pages.invalidate()
    await submit(deps, "problem", record, principal)
    return record


async def archive_problem(
    deps: ContentDeps, principal: Principal | None, problem_id: str
) -> ProblemRecord:
    """Archives (never deletes) the problem; idempotent."""
    parsed = parse_uuid(problem_id)
    async with deps.engine.begin() as conn:
        current = await store.get(conn, "problem", parsed, lock=True) if parsed else None
        current = require_author(current, principal, "problem", problem_id)
        assert parsed is not None
        if current.status == "ARCHIVED":
            return current
        record: ProblemRecord = await store.change(conn, "problem", parsed, {"status": "ARCHIVED"})
    deps.pages.invalidate()
    return record


async def similar_problems(
    deps: ContentDeps, principal: Principal | None, problem_id: str, limit: int
) -> list[Similar]:
    """Approved problems nearest to this one."""
    if limit == 0:
        limit = 5
    if not 1 <= limit <= 20:
        raise errors.InvalidArgument.one("limit", "must be between 1 and 20")
    record = await get_problem(deps, principal, problem_id)
    parsed = parse_uuid(record.id)
    vector = await store.search_vector(deps.engine, "problem", parsed) if parsed else None
    if vector is None:
        return []
    return await store.similar_problems(deps.engine, vector, exclude=parsed, limit=limit)
