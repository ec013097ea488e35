"""The embedding queue consumer: stores the search vector of each decided item."""

from __future__ import annotations

from bullmq import Job, Worker

from services.content.deps import ContentDeps
from services.content.embedding import embed_item
from services.core.logging import get_logger
from services.core.queues import EMBEDDING_QUEUE, EmbeddingJob
from services.worker.deferral import Deferral
from services.worker.metrics import JOBS_COMPLETED, JOBS_FAILED

log = get_logger(__name__)


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
    ) -> None:
        self._content = content
        self._deferral = deferral or Deferral(None, queue=EMBEDDING_QUEUE, max_defer_seconds=0)
        self._redis_url = redis_url
        self._concurrency = concurrency
        self._lock_ms = int(lock_seconds * 1000)
        self._worker: Worker | None = None

    async def process(self, job: Job, token: str) -> dict[str, str]:
        """One attempt, once the deferral admits it."""
        async with self._deferral.admit(job.timestamp):
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
            self.process,
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
