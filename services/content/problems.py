"""Problems: report, read, list, edit, archive, and find similar ones."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from services.content.commands import NewProblem, ProblemChanges, ProblemQuery
from services.content.deps import ContentDeps
from services.content.model import ARCHIVED, ContentKind, ProblemRecord, Similar
from services.content.moderation import new_evaluation_id, submit
from services.content.validation import (
    valid_new_problem,
    valid_problem_changes,
    valid_similar_limit,
)
from services.content.visibility import require_agent, require_author, require_visible
from services.core import errors
from services.core.context import Principal
from services.core.logging import get_logger
from services.core.pagination import Page, page_limit, paginate

log = get_logger(__name__)
MAX_DUPLICATES = 5
DUPLICATE_SIMILARITY = 0.80
PROBLEM = ContentKind.PROBLEM


async def create_problem(
    deps: ContentDeps, principal: Principal | None, new: NewProblem
) -> tuple[ProblemRecord, list[Similar]]:
    """Stores the problem PENDING, queues its evaluation, returns it with possible duplicates."""
    agent = require_agent(principal)
    new = valid_new_problem(new)
    # The search vector is the worker's job; the title vector is cheap and the duplicate check
    # needs it now.
    title_vector = await deps.embed_title(new.title)

    async def store_and_queue() -> ProblemRecord:
        record = await deps.store.problems.insert(
            new,
            author_id=agent.id,
            evaluation_id=new_evaluation_id(),
            title_vector=title_vector,
            title_model=deps.titles.model_id,
        )
        await submit(deps, record, principal)
        return record

    # The duplicate query runs beside the insert: the new problem is PENDING, so it can never
    # be among the approved problems the query reads.
    stored, found = await asyncio.gather(
        store_and_queue(),
        deps.store.problems.similar(
            title_vector, exclude=None, limit=MAX_DUPLICATES, by_title=True
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
    record = await deps.store.problems.get(problem_id)
    return require_visible(record, principal, PROBLEM, problem_id)


def _cursor_key(record: ProblemRecord, sort: str) -> list[Any]:
    lead = {"upvotes": [record.upvotes], "solutions": [record.solution_count]}.get(sort, [])
    return [*lead, record.created_at.isoformat(), record.id]


async def list_problems(
    deps: ContentDeps, principal: Principal | None, query: ProblemQuery, *, limit: int, cursor: str
) -> Page[ProblemRecord]:
    """Approved problems, or all of the caller's own with `mine`; keyset-paginated."""
    size = page_limit(limit)
    author_id = require_agent(principal).id if query.mine else None
    scope = (
        f"problems|{query.domain}|{query.severity}|{query.status}|{author_id or ''}|"
        f"{query.guardrail_status}|{query.sort}"
    )
    deps.cursors.decode(scope, cursor)  # a bad cursor fails before the page cache is asked

    async def fetch(after: list[Any] | None, count: int) -> Sequence[ProblemRecord]:
        return await deps.store.problems.page(query, author_id=author_id, after=after, count=count)

    async def load() -> Page[ProblemRecord]:
        return await paginate(
            fetch,
            cursors=deps.cursors,
            scope=scope,
            cursor=cursor,
            limit=size,
            key=lambda last: _cursor_key(last, query.sort),
        )

    return await load() if author_id else await deps.pages.get((scope, size, cursor), load)


async def update_problem(
    deps: ContentDeps, principal: Principal | None, problem_id: str, changes: ProblemChanges
) -> ProblemRecord:
    """Applies the fields sent; the problem gets a new evaluation and is PENDING again."""
    changes = valid_problem_changes(changes)
    title_vector = None
    if changes.title is not None:
        # The embedding takes milliseconds of CPU: only for the author's edit (checked here
        # without a lock, and again under it), and before the row lock is taken.
        require_author(await deps.store.problems.get(problem_id), principal, PROBLEM, problem_id)
        title_vector = (await deps.embed_title(changes.title), deps.titles.model_id)
    async with deps.store.transaction() as tx:
        current = await tx.problems.get(problem_id, lock=True)
        current = require_author(current, principal, PROBLEM, problem_id)
        if current.status == ARCHIVED:
            raise errors.FailedPrecondition("an archived problem cannot change", reason="ARCHIVED")
        if not changes.sent():
            return current
        record = await tx.problems.resubmit(
            current.id, changes, evaluation_id=new_evaluation_id(), title_vector=title_vector
        )
    deps.pages.invalidate()
    await submit(deps, record, principal)
    return record


async def archive_problem(
    deps: ContentDeps, principal: Principal | None, problem_id: str
) -> ProblemRecord:
    """Archives (never deletes) the problem; idempotent."""
    async with deps.store.transaction() as tx:
        current = await tx.problems.get(problem_id, lock=True)
        current = require_author(current, principal, PROBLEM, problem_id)
        if current.status == ARCHIVED:
            return current
        record = await tx.problems.archive(current.id)
    deps.pages.invalidate()
    return record


async def similar_problems(
    deps: ContentDeps, principal: Principal | None, problem_id: str, limit: int
) -> list[Similar]:
    """Approved problems nearest to this one."""
    limit = valid_similar_limit(limit)
    record = await get_problem(deps, principal, problem_id)
    vector = await deps.store.problems.search_vector(record.id)
    if vector is None:
        return []
    return await deps.store.problems.similar(vector, exclude=record.id, limit=limit)
