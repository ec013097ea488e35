"""Hand-off to the guardrail: every create or update gets a fresh evaluation, queued."""

from __future__ import annotations

import uuid
from typing import Any

from services.content.deps import ContentDeps
from services.core.queues import EvaluationJob


def new_evaluation_id() -> uuid.UUID:
    """The id of a new evaluation (also its job id)."""
    return uuid.uuid4()


def job_for(kind: str, record: Any) -> EvaluationJob:
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
    )


async def submit(deps: ContentDeps, kind: str, record: Any) -> bool:
    """Queues the record for evaluation after its transaction committed.

    A failure here loses nothing: the item is stored PENDING and the sweep re-enqueues it.
    """
    return await deps.queue.enqueue(job_for(kind, record))
