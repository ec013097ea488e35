"""The guardrail queue consumer: evaluates jobs, dead-letters the hopeless ones, sweeps."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

from bullmq import Job, Worker

from services.content.deps import ContentDeps
from services.content.embedding import EMBEDDED_KINDS, backfill
from services.content.store import approved_items
from services.content.sweep import requeue_lost
from services.core.logging import get_logger
from services.core.queues import (
    GUARDRAIL_JOB_OPTIONS,
    GUARDRAIL_QUEUE,
    EmbeddingJob,
    EmbeddingQueue,
    EvaluationJob,
)
from services.guardrail.classifier.base import ClassifierError
from services.guardrail.pipeline import Pipeline
from services.worker.deferral import Deferral
from services.worker.metrics import JOBS_COMPLETED, JOBS_FAILED, publish_queue_sizes

log = get_logger(__name__)
_GAUGE_INTERVAL_SECONDS = 5.0
_BACKFILL_ROUND = 256
"""Vectors a sweep round may compute: a few seconds of CPU, so the round stays short."""


class GuardrailWorker:
    """Runs the guardrail pipeline on the queue with bounded concurrency."""

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        redis_url: str,
        concurrency: int,
        lock_seconds: float = 30.0,
        content: ContentDeps,
        embeddings: EmbeddingQueue,
        sweep_interval: float,
        pending_after: timedelta,
        deferral: Deferral | None = None,
    ) -> None:
        self._pipeline = pipeline
        self._redis_url = redis_url
        self._concurrency = concurrency
        self._lock_ms = int(lock_seconds * 1000)
        self._content = content
        self._embeddings = embeddings
        self._sweep_interval = sweep_interval
        self._pending_after = pending_after
        self._deferral = deferral or Deferral(None, queue=GUARDRAIL_QUEUE, max_defer_seconds=0)
        self._worker: Worker | None = None
        self._sweeper: asyncio.Task[None] | None = None

    async def process(self, job: Job, token: str) -> dict[str, str]:
        """One attempt (once the deferral admits it); the last failing attempt dead-letters the
        item as FLAGGED instead."""
        async with self._deferral.admit(job.timestamp):
            return await self._attempt(job)

    async def _attempt(self, job: Job) -> dict[str, str]:
        data = EvaluationJob.from_data(job.data)
        trust = await approved_items(
            self._content.engine,
            data.author_agent_id,
            at_most=self._pipeline.thresholds.new_account_min_approved,
        )
        data = replace(data, author_approved_items=trust)
        attempts = int(job.opts.get("attempts", GUARDRAIL_JOB_OPTIONS["attempts"]))
        attempt = job.attemptsMade + 1
        try:
            outcome = await self._pipeline.evaluate(data, attempt=attempt)
        except Exception as exc:
            JOBS_FAILED.labels(GUARDRAIL_QUEUE).inc()
            retryable = not (isinstance(exc, ClassifierError) and not exc.retryable)
            if retryable and attempt < attempts:
                log.warning("evaluation_attempt_failed", attempt=attempt, error=type(exc).__name__)
                raise
            log.error("evaluation_dead_lettered", attempts=attempt, error=type(exc).__name__)
            await self._pipeline.dead_letter(data, type(exc).__name__, attempt)
            await self._embed(data)
            JOBS_COMPLETED.labels(GUARDRAIL_QUEUE).inc()
            return {"decision": "FLAGGED", "deadLettered": "true"}
        if outcome.verdict.status != "REJECTED":
            await self._embed(data)
        JOBS_COMPLETED.labels(GUARDRAIL_QUEUE).inc()
        return {"decision": outcome.verdict.status}

    async def _embed(self, data: EvaluationJob) -> None:
        """Queues the item's search vector once its text is decided on (not in this job: the
        model is CPU or a hosted API, and has its own retries); if Redis refuses, the sweep's
        backfill embeds it later."""
        if data.kind in EMBEDDED_KINDS:
            await self._embeddings.enqueue(
                EmbeddingJob(data.kind, data.content_id, data.evaluation_id)
            )

    async def _sweep_forever(self) -> None:
        assert self._worker is not None
        from bullmq import Queue

        queue = Queue(GUARDRAIL_QUEUE, {"connection": self._redis_url})
        last_sweep = 0.0
        loop = asyncio.get_running_loop()
        try:
            while True:
                try:
                    await publish_queue_sizes(queue)
                    await publish_queue_sizes(self._embeddings.queue)
                    if loop.time() - last_sweep >= self._sweep_interval:
                        last_sweep = loop.time()
                        await requeue_lost(self._content, queue, older_than=self._pending_after)
                        if not self._deferral.deferring:  # catch-up work waits for calm
                            await backfill(
                                self._content,
                                unchanged_for=self._pending_after,
                                limit=_BACKFILL_ROUND,
                            )
                except Exception:  # a failed round must not stop future ones
                    log.warning("sweep_failed")
                await asyncio.sleep(min(self._sweep_interval, _GAUGE_INTERVAL_SECONDS))
        finally:
            await queue.close()

    def start(self) -> None:
        """Starts consuming (bullmq runs its own loop task) and the periodic sweep."""
        self._worker = Worker(
            GUARDRAIL_QUEUE,
            self.process,
            {
                "connection": self._redis_url,
                "concurrency": self._concurrency,
                # A crashed worker's jobs return to the queue once their lock lapses.
                "lockDuration": self._lock_ms,
                "stalledInterval": self._lock_ms,
            },
        )
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="sweep")

    async def stop(self, *, force: bool = False) -> None:
        """Stops taking jobs and waits for the running ones (bullmq's close does).

        `force` abandons running jobs without finishing them, as a crash would; their locks
        lapse and another worker takes them over.
        """
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        self._deferral.open()  # jobs already taken run now instead of waiting out the load
        if self._worker is not None:
            await self._worker.close(force=force)
        close = getattr(self._pipeline.classifier, "aclose", None)
        if close is not None:
            await close()
