"""The content service's job consumers in the worker: search vectors of decided items, and
the sweep that keeps nothing pending forever; and the factory the worker builds them with."""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from datetime import timedelta

from bullmq import Job, Queue, Worker

from services.content.deps import ContentDeps
from services.content.embedding import backfill, embed_item
from services.content.queue import EMBEDDING_QUEUE, EmbeddingJob
from services.content.sweep import requeue_lost
from services.core.deferral import Deferral
from services.core.error_tracking import reporting_crashes
from services.core.idle import idle_executor
from services.core.jobs import (
    JOBS_COMPLETED,
    JOBS_FAILED,
    JobConsumer,
    PeriodicTask,
    WorkerResources,
    publish_queue_sizes,
    timed_job,
)
from services.core.logging import get_logger
from services.core.queues import GUARDRAIL_QUEUE

log = get_logger(__name__)
_GAUGE_INTERVAL_SECONDS = 5.0
_BACKFILL_ROUND = 256
"""Vectors a sweep round may compute: a few seconds of CPU, so the round stays short."""


class EmbeddingWorker:
    """Embeds items with bounded concurrency; a failed job is retried with backoff, and after
    its last attempt the item waits for the sweep's backfill."""

    def __init__(
        self,
        content: ContentDeps,
        *,
        redis_url: str,
        concurrency: int,
        lock_seconds: float,
        deferral: Deferral | None = None,
        executor: Executor | None = None,
    ) -> None:
        self._content = content
        self.executor = executor
        """The pool the vectors are computed on (shut down with the consumer)."""
        self._deferral = deferral or Deferral(None, queue=EMBEDDING_QUEUE, max_defer_seconds=0)
        self._redis_url = redis_url
        self._concurrency = concurrency
        self._lock_ms = int(lock_seconds * 1000)
        self._worker: Worker | None = None

    async def process(self, job: Job, token: str) -> dict[str, str]:
        """One attempt, once the deferral admits it."""
        async with self._deferral.admit(job.timestamp):
            with timed_job(EMBEDDING_QUEUE):
                return await self._attempt(job)

    async def _attempt(self, job: Job) -> dict[str, str]:
        data = EmbeddingJob.from_data(job.data)
        try:
            stored = await embed_item(self._content, data.kind, data.content_id, data.evaluation_id)
        except Exception as exc:
            JOBS_FAILED.labels(EMBEDDING_QUEUE).inc()
            log.warning(
                "embedding_attempt_failed",
                kind=data.kind,
                attempt=job.attemptsMade + 1,
                error=type(exc).__name__,
            )
            raise
        JOBS_COMPLETED.labels(EMBEDDING_QUEUE).inc()
        return {"stored": "true" if stored else "false"}

    def start(self) -> None:
        """Starts consuming."""
        self._worker = Worker(
            EMBEDDING_QUEUE,
            reporting_crashes(EMBEDDING_QUEUE, self.process),
            {
                "connection": self._redis_url,
                "concurrency": self._concurrency,
                "lockDuration": self._lock_ms,
                "stalledInterval": self._lock_ms,
            },
        )

    async def stop(self, *, force: bool = False) -> None:
        """Stops taking jobs; waits for the running ones unless `force`."""
        self._deferral.open()
        if self._worker is not None:
            await self._worker.close(force=force)
        if self.executor is not None:
            self.executor.shutdown(wait=not force)


class ContentSweep(PeriodicTask):
    """Every SWEEP_INTERVAL_SECONDS: re-queues content whose evaluation was lost, and (when the
    machine is calm) embeds what still has no vector from the current model; every few seconds
    it publishes the embedding queue's size."""

    def __init__(
        self,
        content: ContentDeps,
        *,
        redis_url: str,
        interval: float,
        pending_after: timedelta,
        deferral: Deferral,
    ) -> None:
        super().__init__("sweep", self._tick, interval=min(interval, _GAUGE_INTERVAL_SECONDS))
        self._content = content
        self._redis_url = redis_url
        self._sweep_interval = interval
        self._pending_after = pending_after
        self._deferral = deferral
        self._evaluations: Queue | None = None
        self._last_sweep = 0.0

    async def _tick(self) -> None:
        if self._content.embeddings is not None:
            await publish_queue_sizes(self._content.embeddings.queue)
        now = asyncio.get_running_loop().time()
        if self._last_sweep and now - self._last_sweep < self._sweep_interval:
            return
        if self._evaluations is None:
            self._evaluations = Queue(GUARDRAIL_QUEUE, {"connection": self._redis_url})
        await requeue_lost(self._content, self._evaluations, older_than=self._pending_after)
        if not self._deferral.deferring:  # catch-up work waits for calm
            await backfill(self._content, unchanged_for=self._pending_after, limit=_BACKFILL_ROUND)
        # Only a round that finished counts: a failed one is tried again at the next tick.
        self._last_sweep = asyncio.get_running_loop().time()

    async def stop(self, *, force: bool = False) -> None:
        """Stops after the round in progress, then closes the queue connection."""
        await super().stop(force=force)
        if self._evaluations is not None:
            await self._evaluations.close()


async def consumers(resources: WorkerResources) -> list[JobConsumer]:
    """The embedding consumer and the sweep, sharing one idle-priority embedding pool."""
    from services.content.service import build_deps

    settings = resources.settings
    # Search vectors may be late; the CPU they take must not slow requests or decisions.
    executor = idle_executor(settings.embedding_concurrency, name="embed")
    content = build_deps(resources.runtime, item_executor=executor)
    embeddings = EmbeddingWorker(
        content,
        redis_url=settings.redis_url,
        concurrency=settings.embedding_concurrency,
        lock_seconds=settings.worker_lock_seconds,
        deferral=resources.deferral(EMBEDDING_QUEUE),
        executor=executor,
    )
    sweep = ContentSweep(
        content,
        redis_url=settings.redis_url,
        interval=settings.sweep_interval_seconds,
        pending_after=timedelta(seconds=settings.sweep_pending_after_seconds),
        deferral=resources.deferral(EMBEDDING_QUEUE),
    )
    return [embeddings, sweep]
