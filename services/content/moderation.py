"""Hand-off to the guardrail: every create or update gets a fresh evaluation, queued."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from services.content.deps import ContentDeps
from services.core.context import Principal
from services.core.queues import EvaluationJob


def new_evaluation_id() -> uuid.UUID:
    """The id of a new evaluation (also its job id)."""
    return uuid.uuid4()


def back_to_moderation() -> dict[str, Any]:
    """Column values that put edited content back in the queue under a new evaluation."""
    return {
        "guardrail_status": "PENDING",
        "guardrail_evaluation_id": new_evaluation_id(),
        "guardrail_decided_at": None,
        "guardrail_explanation": "",
    }


def job_for(kind: str, record: Any, *, account_age_days: float = 0.0) -> EvaluationJob:
    """The evaluation job of a record's current text."""
    if kind == "problem":
        title, body, domain = record.title, record.description, record.domain
    elif kind == "solution":
        title, body, domain = record.title, f"{record.description}\n\n{record.approach}", None
    else:
        title, body, domain = "", record.content, None
    return EvaluationJob(
        evaluation_id=record.guardrail.evaluation_id,
        kind=kind,
        content_id=record.id,
        author_agent_id=record.author_agent_id,
        title=title,
        body=body,
        claimed_domain=domain,
        author_account_age_days=account_age_days,
    )


async def submit(
    deps: ContentDeps, kind: str, record: Any, principal: Principal | None = None
) -> bool:
    """Queues the record for evaluation after its transaction committed.

    A failure here loses nothing: the item is stored PENDING and the sweep re-enqueues it. The
    author's approved-item count is left to the worker: it is only needed at evaluation time,
    and counting three tables is no work for the request to wait on.
    """
    age = 0.0
    if principal is not None and principal.created_at is not None:
        age = (datetime.now(UTC) - principal.created_at).total_seconds() / 86400
    return await deps.queue.enqueue(job_for(kind, record, account_age_days=age))
