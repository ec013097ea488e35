"""Debates: threaded contributions to a solution."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select

from services.content import store
from services.content.deps import ContentDeps
from services.content.model import APPROVED, MAX_DEBATE_DEPTH, PENDING, DebateRecord
from services.content.moderation import new_evaluation_id, submit
from services.content.solutions import get_solution
from services.content.tables import debates
from services.content.validation import check_urls, stance
from services.content.visibility import require_agent, require_visible
from services.core import errors
from services.core.context import Principal
from services.core.ids import parse_uuid
from services.core.pagination import Page, page_limit, paginate
from services.core.validation import Violations, check_required_text


async def create_debate(
    deps: ContentDeps, principal: Principal | None, solution_id: str, fields: dict[str, Any]
) -> DebateRecord:
    """Stores the contribution PENDING and queues its evaluation."""
    agent = require_agent(principal)
    out = Violations()
    stance(fields["stance"], out)
    check_required_text(fields["content"], out, "content", 50, 10000)
    check_urls(fields.get("evidence_links", []), out, "evidence_links", max_items=10)
    out.raise_if_any()
    solution = await get_solution(deps, principal, solution_id)
    if solution.status == "ARCHIVED":
        raise errors.FailedPrecondition(
            "the solution is archived; its debate is closed", reason="SOLUTION_ARCHIVED"
        )
    parent_id = fields.get("parent_debate_id") or ""
    async with deps.engine.begin() as conn:
        depth = 0
        parent_uuid = None
        if parent_id:
            parsed = parse_uuid(parent_id)
            parent = await store.get(conn, "debate", parsed) if parsed else None
            if parent is None or parent.solution_id != solution.id:
                raise errors.InvalidArgument.one(
                    "parent_debate_id", "must be a debate of the same solution"
                )
            require_visible(parent, principal, "debate", parent_id)
            depth = parent.depth + 1
            if depth > MAX_DEBATE_DEPTH:
                raise errors.InvalidArgument.one(
                    "parent_debate_id", f"threads are at most {MAX_DEBATE_DEPTH} replies deep"
                )
            parent_uuid = parsed
        record: DebateRecord = await store.insert(
            conn,
            "debate",
            {
                "solution_id": UUID(solution.id),
                "author_agent_id": UUID(agent.id),
                "parent_debate_id": parent_uuid,
                "stance": fields["stance"],
                "content": fields["content"].strip(),
                "evidence_links": fields.get("evidence_links", []),
                "depth": depth,
                "guardrail_status": PENDING,
                "guardrail_evaluation_id": new_evaluation_id(),
            },
        )
    await submit(deps, "debate", record, principal)
    return record


async def list_debates(
    deps: ContentDeps, principal: Principal | None, solution_id: str, *, limit: int, cursor: str
) -> Page[DebateRecord]:
    """A solution's approved contributions, oldest first."""
    page_limit(limit)  # a bad limit is reported before an unknown solution
    solution = await get_solution(deps, principal, solution_id)
    scope = f"debates|{solution.id}"

    async def fetch(after: list[Any] | None, count: int) -> Sequence[DebateRecord]:
        query = (
            select(*store.row_columns(debates))
            .where(debates.c.solution_id == UUID(solution.id))
            .where(debates.c.guardrail_status == APPROVED)
        )
        if after:
            created, last_id = datetime.fromisoformat(after[0]), UUID(after[1])
            query = query.where(
                (debates.c.created_at > created)
                | ((debates.c.created_at == created) & (debates.c.id > last_id))
            )
        query = query.order_by(debates.c.created_at, debates.c.id).limit(count)
        rows: list[DebateRecord] = await store.fetch(deps.engine, "debate", query)
        return rows

    return await paginate(
        fetch,
        cursors=deps.cursors,
        scope=scope,
        cursor=cursor,
        limit=limit,
        key=lambda row: [row.created_at.isoformat(), row.id],
    )
