"""Job queues (bullmq on Redis): the producer side every queue shares, and the guardrail queue.

The guardrail's evaluation job is the one job two services share (content produces it, the
guardrail consumes it), so its shape lives here; a queue one service both fills and consumes
lives in that service (content's embedding queue: `services.content.queue`).
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from typing import Any

from bullmq import Queue
from redis.exceptions import RedisError

from services.core.logging import get_logger

GUARDRAIL_QUEUE = "guardrail-evaluation"
_LIVE_STATES = {"waiting", "active", "delayed", "prioritized", "waiting-children"}
# Bounded so a Redis outage cannot hold a create; generous enough that a busy event loop does
# not turn ordinary enqueues into sweep work (seen at 1 s under CreateProblem load).
ENQUEUE_TIMEOUT_SECONDS = 5.0
# 3 attempts with exponential backoff from 1 s; after the last, the job is dead-lettered and
# the item flagged for human review (nothing stays pending).
GUARDRAIL_JOB_OPTIONS: dict[str, Any] = {
    "attempts": 3,
    "backoff": {"type": "exponential", "delay": 1000},
    "removeOnComplete": {"age": 7 * 24 * 3600, "count": 100_000},
    "removeOnFail": {"age": 30 * 24 * 3600},
}

log = get_logger(__name__)


@dataclass(frozen=True)
class EvaluationJob:
    """What the guardrail worker needs to evaluate one piece of content.

    The text travels in the job, so evaluating it needs no read of the content; the evaluation
    id is also the job id, so enqueueing twice is harmless.
    """

    evaluation_id: str
    kind: str
    content_id: str
    author_agent_id: str
    title: str
    body: str
    claimed_domain: str | None
    author_account_age_days: float = 0.0
    """Age of the author's account when submitted (trust tier input)."""
    author_approved_items: int = 0
    """Approved items of the author (trust tier input); the worker counts them when it evaluates."""

    def data(self) -> dict[str, Any]:
        """The job payload (JSON)."""
        return {key: value for key, value in asdict(self).items()}

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> EvaluationJob:
        """The job from its payload."""
        return cls(**{name: data.get(name) for name in cls.__dataclass_fields__})  # type: ignore[arg-type]


class JobQueue:
    """Producer for one bullmq queue, with its job options."""

    def __init__(self, name: str, redis_url: str, options: dict[str, Any]) -> None:
        self.name = name
        self._options = options
        self._queue = Queue(name, {"connection": redis_url})

    @property
    def queue(self) -> Queue:
        """The underlying bullmq queue (for counts and job lookups)."""
        return self._queue

    async def add(self, job_id: str, name: str, data: dict[str, Any]) -> bool:
        """Queues a job (a second add of the same id is a no-op); False when Redis is
        unreachable, for the caller's sweep to make up for."""
        try:
            # Bounded: a Redis outage must not hold the caller.
            await asyncio.wait_for(
                self._queue.add(name, data, {**self._options, "jobId": job_id}),
                ENQUEUE_TIMEOUT_SECONDS,
            )
        except (RedisError, OSError, TimeoutError):
            log.warning("enqueue_failed", queue=self.name, job_id=job_id)
            return False
        return True

    async def close(self) -> None:
        """Closes the queue's connection."""
        await self._queue.close()


async def consumer_count(redis_url: str, name: str) -> int:
    """How many bullmq workers consume queue `name` now (bullmq's count, by Redis client name)."""
    queue = Queue(name, {"connection": redis_url})
    try:
        return int(await queue.get_workers_count())
    finally:
        await queue.close()


class EvaluationQueue(JobQueue):
    """Producer for the guardrail queue."""

    def __init__(self, redis_url: str) -> None:
        super().__init__(GUARDRAIL_QUEUE, redis_url, GUARDRAIL_JOB_OPTIONS)

    async def enqueue(self, job: EvaluationJob) -> bool:
        """Queues the job; False when Redis is unreachable (the sweep re-enqueues it later)."""
        return await self.add(job.evaluation_id, job.kind, job.data())

    async def requeue_if_lost(self, job: EvaluationJob) -> bool:
        """Queues the job again when it has no live job: Redis lost it, the enqueue after the
        commit failed, or it finished while its decision never landed. True when queued."""
        state = await self.queue.getJobState(job.evaluation_id)
        if state in _LIVE_STATES:
            return False
        if state != "unknown":
            await self.queue.remove(job.evaluation_id)
        return await self.enqueue(job)
