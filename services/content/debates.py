"""Debates: threaded contributions to a solution."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from services.content.commands import NewDebate
from services.content.deps import ContentDeps
from services.content.model import ARCHIVED, MAX_DEBATE_DEPTH, ContentKind, DebateRecord
from services.content.moderation import new_evaluation_id, submit
from services.content.solutions import get_solution
from services.content.validation import valid_new_debate
from services.content.visibility import require_agent, require_visible
from services.core import errors
from services.core.context import Principal
from services.core.pagination import Page, page_limit, paginate


async def create_debate(
    deps: ContentDeps, principal: Principal | None, new: NewDebate
) -> DebateRecord:
    """Stores the contribution PENDING and queues its evaluation."""
    agent = require_agent(principal)
    new = valid_new_debate(new)
    solution = await get_solution(deps, principal, new.solution_id)
    if solution.status == ARCHIVED:
        raise errors.FailedPrecondition(
            "the solution is archived; its debate is closed", reason="SOLUTION_ARCHIVED"
        )
    depth, parent_id = 0, None
    if new.parent_debate_id:
        parent = await deps.store.debates.get(new.parent_debate_id)
        if parent is None or parent.solution_id != solution.id:
            raise errors.InvalidArgument.one(
                "parent_debate_id", "must be a debate of the same solution"
            )
        require_visible(parent, principal, ContentKind.DEBATE, new.parent_debate_id)
        depth = parent.depth + 1
        if depth > MAX_DEBATE_DEPTH:
            raise errors.InvalidArgument.one(
                "parent_debate_id", f"threads are at most {MAX_DEBATE_DEPTH} replies deep"
            )
        parent_id = parent.id
    # One INSERT: the parent's existence is guaranteed by its foreign key, and a contribution
    # is never deleted, so nothing read above can vanish before it commits.
    record = await deps.store.debates.insert(
        replace(new, solution_id=solution.id),
        author_id=agent.id,
        parent_id=parent_id,
        depth=depth,
        evaluation_id=new_evaluation_id(),
    )
    await submit(deps, record, principal)
    return record


async def list_debates(
    deps: ContentDeps, principal: Principal | None, solution_id: str, *, limit: int, cursor: str
) -> Page[DebateRecord]:
    """A solution's approved contributions, oldest first."""
    page_limit(limit)  # a bad limit is reported before an unknown solution
    solution = await get_solution(deps, principal, solution_id)

    async def fetch(after: list[Any] | None, count: int) -> Sequence[DebateRecord]:
        return await deps.store.debates.page(solution.id, after=after, count=count)

    return await paginate(
        fetch,
        cursors=deps.cursors,
        scope=f"debates|{solution.id}",
        cursor=cursor,
        limit=limit,
        key=lambda row: [row.created_at.isoformat(), row.id],
    )
