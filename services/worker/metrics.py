"""Queue metrics of the worker process (bullmq_* names, one label per queue)."""

from __future__ import annotations

from bullmq import Queue
from prometheus_client import Counter, Gauge

JOBS_COMPLETED = Counter("bullmq_jobs_completed_total", "Jobs completed", ["queue"])
JOBS_FAILED = Counter("bullmq_jobs_failed_total", "Job attempts that failed", ["queue"])
QUEUE_SIZE = Gauge("bullmq_queue_size", "Jobs in the queue by state", ["queue", "state"])
_COUNTED_STATES = ("waiting", "active", "delayed", "failed", "completed")


async def publish_queue_sizes(queue: Queue) -> None:
    """Sets bullmq_queue_size for every state of `queue`."""
    counts = await queue.getJobCounts(*_COUNTED_STATES)
    for state, count in counts.items():
        QUEUE_SIZE.labels(queue.name, state).set(count)
