"""What a service's job consumers share: the protocol the worker runs them by, their metrics.

A service declares its consumers in its definition (`ServiceDefinition.jobs`); the worker
process builds the ones the registry names from one `WorkerResources` and starts and stops
them together. A consumer owns its queue's loop (bullmq's worker or a periodic task).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from bullmq import Queue
from prometheus_client import Counter, Gauge, Histogram

from services.core.deferral import Deferral, LoadWatch
from services.core.error_tracking import report_job_crash
from services.core.logging import get_logger
from services.core.runtime import Runtime
from services.core.settings import Settings

JOBS_COMPLETED = Counter("bullmq_jobs_completed_total", "Jobs completed", ["queue"])
JOBS_FAILED = Counter("bullmq_jobs_failed_total", "Job attempts that failed", ["queue"])
QUEUE_SIZE = Gauge("bullmq_queue_size", "Jobs in the queue by state", ["queue", "state"])
JOB_SECONDS = Histogram(
    "job_duration_seconds",
    "Time the worker spent on one job attempt or one periodic round, by queue (a bullmq queue "
    "or a periodic task's name) and outcome (completed, failed)",
    ["queue", "outcome"],
    # From an embedding (milliseconds) to a sweep or a backup (minutes).
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
_COUNTED_STATES = ("waiting", "active", "delayed", "failed", "completed")
log = get_logger(__name__)


async def publish_queue_sizes(queue: Queue) -> None:
    """Sets bullmq_queue_size for every state of `queue`."""
    counts = await queue.getJobCounts(*_COUNTED_STATES)
    for state, count in counts.items():
        QUEUE_SIZE.labels(queue.name, state).set(count)


@contextlib.contextmanager
def timed_job(queue: str) -> Iterator[None]:
    """Observes job_duration_seconds for the work in its block: `completed` when the block ends
    normally, `failed` when it raises. A cancelled block (a forced stop) is no outcome of the
    job's own and is not observed."""
    started = time.perf_counter()
    try:
        yield
    except Exception:
        JOB_SECONDS.labels(queue, "failed").observe(time.perf_counter() - started)
        raise
    JOB_SECONDS.labels(queue, "completed").observe(time.perf_counter() - started)


class JobConsumer(Protocol):
    """A long-running consumer of one queue or schedule in the worker process."""

    def start(self) -> None:
        """Starts consuming (its loop runs as tasks of the running event loop)."""
        ...

    async def stop(self, *, force: bool = False) -> None:
        """Stops taking work; running jobs finish unless `force` abandons them, as a crash
        would (their locks lapse and another worker takes them over)."""
        ...


@dataclass(frozen=True)
class WorkerResources:
    """What the worker process hands every service's consumer factory."""

    settings: Settings
    runtime: Runtime
    load: LoadWatch | None
    """The machine-load watch behind job deferral; None when deferral is off."""
    provided: Mapping[str, Any] = field(default_factory=dict)
    """Components a caller built already, by name (tests pass a classifier this way)."""

    def deferral(self, queue: str) -> Deferral:
        """The deferral of jobs of `queue` while the machine is busy (WORKER_DEFER_SECONDS)."""
        return Deferral(
            self.load, queue=queue, max_defer_seconds=self.settings.worker_defer_seconds
        )


async def finish(task: asyncio.Task[None] | None, *, wait_seconds: float, force: bool) -> None:
    """Lets a background loop's task end by itself for up to `wait_seconds` (not when `force`),
    then cancels it; it has been told to stop already."""
    if task is None:
        return
    if not force:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), wait_seconds)
    if not task.done():
        task.cancel()
    await asyncio.gather(task, return_exceptions=True)


class PeriodicTask:
    """A `JobConsumer` that runs `round()` every `interval` seconds until stopped.

    A failed round is logged and the next one runs on time; stopping lets a round in progress
    finish (up to STOP_WAIT_SECONDS) unless `force`.
    """

    STOP_WAIT_SECONDS = 30.0

    def __init__(
        self, name: str, round: Callable[[], Awaitable[object]], *, interval: float
    ) -> None:
        self.name = name
        self._round = round
        self._interval = interval
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                with timed_job(self.name):
                    await self._round()
            except Exception as exc:  # a failed round must not stop the next ones
                log.warning("periodic_round_failed", task=self.name, exc_info=True)
                report_job_crash(exc, job=self.name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval)

    def start(self) -> None:
        """Starts the rounds."""
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self, *, force: bool = False) -> None:
        """Stops after the round in progress (cancels it when `force` or when it overruns)."""
        self._stopping.set()
        await finish(self._task, wait_seconds=self.STOP_WAIT_SECONDS, force=force)
