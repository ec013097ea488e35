"""Solutions: propose, read, list, edit and archive."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from services.content.commands import NewSolution, SolutionChanges, SolutionQuery
from services.content.deps import ContentDeps
from services.content.model import APPROVED, ARCHIVED, ContentKind, SolutionRecord
from services.content.moderation import new_evaluation_id, submit
from services.content.problems import get_problem
from services.content.validation import valid_new_solution, valid_solution_changes
from services.content.visibility import require_agent, require_author, require_visible
from services.core import errors
from services.core.context import Principal
from services.core.ids import parse_uuid
from services.core.pagination import Page, page_limit, paginate

SOLUTION = ContentKind.SOLUTION


async def create_solution(
    deps: ContentDeps, principal: Principal | None, new: NewSolution
) -> SolutionRecord:
    """Stores the solution PENDING and queues its evaluation."""
    agent = require_agent(principal)
    new = valid_new_solution(new)
    problem = await get_problem(deps, principal, new.problem_id)
    if problem.status == ARCHIVED:
        raise errors.FailedPrecondition(
            "the problem is archived; it takes no new solutions", reason="PROBLEM_ARCHIVED"
        )
    record = await deps.store.solutions.insert(
        replace(new, problem_id=problem.id),
        author_id=agent.id,
        evaluation_id=new_evaluation_id(),
    )
    await submit(deps, record, principal)
    return record


async def get_solution(
    deps: ContentDeps, principal: Principal | None, solution_id: str
) -> SolutionRecord:
    """A solution the caller may see."""
    record = await deps.store.solutions.get(solution_id)
    return require_visible(record, principal, SOLUTION, solution_id)


async def list_solutions(
    deps: ContentDeps,
    principal: Principal | None,
    query: SolutionQuery,
    *,
    limit: int,
    cursor: str,
) -> Page[SolutionRecord]:
    """Approved solutions (or the caller's own with `mine`), newest or best first."""
    size = page_limit(limit)
    if query.problem_id and parse_uuid(query.problem_id) is None:
        raise errors.InvalidArgument.one("problem_id", "must be a UUID")
    author_id = require_agent(principal).id if query.mine else None
    scope = f"solutions|{query.problem_id}|{query.status}|{author_id or ''}|{query.by_score}"
    deps.cursors.decode(scope, cursor)  # a bad cursor fails before the page cache is asked

    async def fetch(after: list[Any] | None, count: int) -> Sequence[SolutionRecord]:
        return await deps.store.solutions.page(query, author_id=author_id, after=after, count=count)

    def key(last: SolutionRecord) -> list[Any]:
        lead = [last.scores.composite] if query.by_score and last.scores else []
        return [*lead, last.created_at.isoformat(), last.id]

    async def load() -> Page[SolutionRecord]:
        return await paginate(
            fetch, cursors=deps.cursors, scope=scope, cursor=cursor, limit=size, key=key
        )

    return await load() if author_id else await deps.pages.get((scope, size, cursor), load)


async def update_solution(
    deps: ContentDeps, principal: Principal | None, solution_id: str, changes: SolutionChanges
) -> SolutionRecord:
    """Applies the fields sent; the solution is PENDING again under a new evaluation."""
    changes = valid_solution_changes(changes)
    async with deps.store.transaction() as tx:
        current = await tx.solutions.get(solution_id, lock=True)
        current = require_author(current, principal, SOLUTION, solution_id)
        if current.status == ARCHIVED:
            raise errors.FailedPrecondition("an archived solution cannot change", reason="ARCHIVED")
        if not changes.sent():
            return current
        if current.guardrail.status == APPROVED:  # it stops counting until approved again
            await tx.problems.count_solutions(current.problem_id, -1)
        record = await tx.solutions.resubmit(current.id, changes, evaluation_id=new_evaluation_id())
    deps.pages.invalidate()
    await submit(deps, record, principal)
    return record


async def archive_solution(
    deps: ContentDeps, principal: Principal | None, solution_id: str
) -> SolutionRecord:
    """Archives the solution; an approved one stops counting for its problem."""
    async with deps.store.transaction() as tx:
        current = await tx.solutions.get(solution_id, lock=True)
        current = require_author(current, principal, SOLUTION, solution_id)
        if current.status == ARCHIVED:
            return current
        if current.guardrail.status == APPROVED:
            await tx.problems.count_solutions(current.problem_id, -1)
        record = await tx.solutions.archive(current.id)
    deps.pages.invalidate()
    return record
