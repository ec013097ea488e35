"""Nothing stays pending: content whose evaluation job was lost is queued again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bullmq import Queue
from prometheus_client import Counter

from services.content.deps import ContentDeps
from services.content.model import ContentKind
from services.content.moderation import job_for
from services.core.logging import get_logger

log = get_logger(__name__)
REQUEUED = Counter(
    "content_evaluations_requeued_total", "Content evaluations queued again by the sweep"
)
_LIVE_STATES = {"waiting", "active", "delayed", "prioritized", "waiting-children"}


async def requeue_lost(deps: ContentDeps, queue: Queue, *, older_than: timedelta) -> int:
    """Re-enqueues PENDING items older than `older_than` that have no live job; returns how many.

    A job can be missing (Redis lost it, or the enqueue after the commit failed) or finished
    while the decision never reached the content; both are queued afresh under the same id.
    """
    before = datetime.now(UTC) - older_than
    requeued = 0
    for kind in ContentKind:
        for record in await deps.store.moderation.pending_since(kind, before, limit=500):
            job_id = record.guardrail.evaluation_id
            state = await queue.getJobState(job_id)
            if state in _LIVE_STATES:
                continue
            if state != "unknown":
                await queue.remove(job_id)
            if await deps.queue.enqueue(job_for(record)):
                requeued += 1
    if requeued:
        REQUEUED.inc(requeued)
        log.warning("requeued_lost_evaluations", count=requeued)
    return requeued
