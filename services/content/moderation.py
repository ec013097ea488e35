"""Hand-off to the guardrail: every create or update gets a fresh evaluation, queued."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from services.content.deps import ContentDeps
from services.content.model import ContentRecord, DebateRecord, ProblemRecord, SolutionRecord
from services.core.context import Principal
from services.core.queues import EvaluationJob


def new_evaluation_id() -> str:
    """The id of a new evaluation (also its job id)."""
    return str(uuid.uuid4())


def job_for(record: ContentRecord, *, account_age_days: float = 0.0) -> EvaluationJob:
    """The evaluation job of a record's current text."""
    title, domain = "", None
    if isinstance(record, ProblemRecord):
        title, body, domain = record.title, record.description, record.domain
    elif isinstance(record, SolutionRecord):
        title, body = record.title, f"{record.description}\n\n{record.approach}"
    else:
        assert isinstance(record, DebateRecord)
        body = record.content
    return EvaluationJob(
        evaluation_id=record.guardrail.evaluation_id,
        kind=record.kind.value,
        content_id=record.id,
        author_agent_id=record.author_agent_id,
        title=title,
        body=body,
        claimed_domain=domain,
        author_account_age_days=account_age_days,
    )


async def submit(
    deps: ContentDeps, record: ContentRecord, principal: Principal | None = None
) -> bool:
    """Queues the record for evaluation after its transaction committed.

    A failure here loses nothing: the item is stored PENDING and the sweep re-enqueues it. The
    author's approved-item count is left to the worker: it is only needed at evaluation time,
    and counting three tables is no work for the request to wait on.
    """
    age = 0.0
    if principal is not None and principal.created_at is not None:
        age = (datetime.now(UTC) - principal.created_at).total_seconds() / 86400
    return await deps.queue.enqueue(job_for(record, account_age_days=age))
