"""Content's embedding queue: the content service fills it as decisions arrive, its job
consumer in the worker computes the search vectors."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from services.core.queues import JobQueue

EMBEDDING_QUEUE = "content-embedding"
# A hosted provider may be down for a while: more attempts, further apart. After the last one the
# item simply stays without a vector until the worker's sweep backfills it.
EMBEDDING_JOB_OPTIONS: dict[str, Any] = {
    "attempts": 5,
    "backoff": {"type": "exponential", "delay": 2000},
    "removeOnComplete": {"age": 24 * 3600, "count": 10_000},
    "removeOnFail": {"age": 7 * 24 * 3600},
}


@dataclass(frozen=True)
class EmbeddingJob:
    """Embed one problem or solution as of one evaluation (its text then)."""

    kind: str
    content_id: str
    evaluation_id: str

    @property
    def job_id(self) -> str:
        """One job per version of the text."""
        return f"embed-{self.evaluation_id}"

    def data(self) -> dict[str, Any]:
        """The job payload (JSON)."""
        return asdict(self)

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> EmbeddingJob:
        """The job from its payload."""
        return cls(str(data["kind"]), str(data["content_id"]), str(data["evaluation_id"]))


class EmbeddingQueue(JobQueue):
    """Producer for the embedding queue (the content service feeds it as decisions arrive)."""

    def __init__(self, redis_url: str) -> None:
        super().__init__(EMBEDDING_QUEUE, redis_url, EMBEDDING_JOB_OPTIONS)

    async def enqueue(self, job: EmbeddingJob) -> bool:
        """Queues the job; False when Redis is unreachable (the sweep's backfill covers it)."""
        return await self.add(job.job_id, job.kind, job.data())
