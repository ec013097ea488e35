"""Background work that steps aside while the machine is busy with other work, for a while.

Idle priority (`services.core.idle`) keeps the worker off cores that request serving wants, but
on a small shared machine it does not keep it from slowing requests: measured on a 2-vCPU VM, a
SCHED_IDLE process spinning on 0.45 cores raised CreateProblem's p99 from 18-27 ms to 30-50 ms
(README, "What the worker costs CreateProblem"). What helps is not running. So while the other
processes on the machine use more than a share of its CPU, each consumer starts at most one job
at a time, and a job waits for at most `max_defer_seconds` from when it was queued: under load
that never ends, jobs run that much later, at full concurrency.

The load is read from /proc/stat (Linux; elsewhere nothing is ever deferred): the whole
machine's busy time minus this process's own CPU time.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress

from prometheus_client import Gauge, Histogram

from services.core.logging import get_logger

log = get_logger(__name__)

DEFERRING = Gauge("worker_deferring", "1 while the worker defers jobs to other work on the machine")
DEFERRED_SECONDS = Histogram(
    "worker_deferred_seconds",
    "How long jobs waited for the machine to calm down before they ran",
    ["queue"],
    buckets=(0.1, 0.5, 1, 2, 5, 10, 20, 30, 60, 120),
)

CpuReader = Callable[[], tuple[float, float] | None]
"""Returns (CPU seconds the whole machine has been busy, CPU seconds of this process)."""

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
# /proc/stat's first line: user nice system idle iowait irq softirq steal (guest time is already
# inside user and nice).
_IDLE_FIELDS = (3, 4)
_COUNTED_FIELDS = 8


def read_cpu_seconds() -> tuple[float, float] | None:
    """(Busy CPU seconds of the machine since boot, CPU seconds of this process); None where
    /proc/stat is missing."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            first = stat.readline().split()
    except OSError:
        return None
    if not first or first[0] != "cpu":
        return None
    ticks = [int(value) for value in first[1 : 1 + _COUNTED_FIELDS]]
    busy = sum(ticks) - sum(ticks[i] for i in _IDLE_FIELDS if i < len(ticks))
    own = os.times()
    return busy / _CLOCK_TICKS, own.user + own.system


class LoadWatch:
    """Samples how much of the machine's CPU other processes use; `busy` above `threshold`.

    `threshold` is a fraction of all cores (0.3 on a 2-core machine: 0.6 cores). `busy` turns
    on at the first busy sample and off after `calm_samples` calm ones in a row, so a pause of
    a fraction of a second between requests does not let a burst of jobs in.
    """

    def __init__(
        self,
        threshold: float,
        *,
        interval_seconds: float = 0.5,
        calm_samples: int = 2,
        cpus: int | None = None,
        read: CpuReader = read_cpu_seconds,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self.busy = False
        self.others_cores = 0.0
        self._interval = interval_seconds
        self._calm_needed = calm_samples
        self._calm = 0
        self._cpus = cpus or os.cpu_count() or 1
        self._read = read
        self._clock = clock
        self._last: tuple[float, float, float] | None = None
        self._listeners: list[Callable[[], None]] = []
        self._task: asyncio.Task[None] | None = None

    @property
    def available(self) -> bool:
        """Whether the machine's load can be read here at all."""
        return self._read() is not None

    def on_change(self, listener: Callable[[], None]) -> None:
        """Calls `listener` whenever `busy` changes."""
        self._listeners.append(listener)

    def sample(self) -> None:
        """Takes one sample and updates `busy` (the first sample only sets the baseline)."""
        reading = self._read()
        if reading is None:
            return
        now = self._clock()
        if self._last is not None:
            before_busy, before_own, before_at = self._last
            elapsed = now - before_at
            if elapsed > 0:
                others = (reading[0] - before_busy) - (reading[1] - before_own)
                self.others_cores = max(0.0, others / elapsed)
                self._update(self.others_cores / self._cpus >= self.threshold)
        self._last = (reading[0], reading[1], now)

    def _update(self, busy_now: bool) -> None:
        if busy_now:
            self._calm = 0
            changed = not self.busy
            self.busy = True
        else:
            self._calm += 1
            changed = self.busy and self._calm >= self._calm_needed
            if changed:
                self.busy = False
        if changed:
            DEFERRING.set(1 if self.busy else 0)
            log.info(
                "worker_deferring" if self.busy else "worker_resuming",
                others_cores=round(self.others_cores, 2),
                cpus=self._cpus,
            )
            for listener in self._listeners:
                listener()

    async def _run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self._interval)

    def start(self) -> None:
        """Samples in the background until `stop`."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="load-watch")

    async def stop(self) -> None:
        """Stops sampling; `busy` stays as it was."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None


class Deferral:
    """The gate a consumer's jobs pass before they run.

    While `watch` is busy, a job waits until fewer than `busy_concurrency` jobs of this gate
    run, or until it has been queued for `max_defer_seconds`, or until the machine calms down,
    whichever comes first. `open` lets every waiting and later job through (stopping: jobs
    already taken finish promptly).
    """

    def __init__(
        self,
        watch: LoadWatch | None,
        *,
        queue: str,
        max_defer_seconds: float,
        busy_concurrency: int = 1,
    ) -> None:
        self._watch = watch
        self._queue = queue
        self._max_defer = max_defer_seconds
        self._busy_concurrency = busy_concurrency
        self._running = 0
        self._opened = False
        self._changed = asyncio.Event()
        if watch is not None:
            watch.on_change(self._changed.set)

    @property
    def deferring(self) -> bool:
        """Whether the machine is busy and the gate holds jobs back."""
        return not self._opened and self._watch is not None and self._watch.busy

    @property
    def running(self) -> int:
        """Jobs that passed the gate and have not finished."""
        return self._running

    def open(self) -> None:
        """Stops deferring, for good."""
        self._opened = True
        self._changed.set()

    def _may_run(self, queued_at: float, now: float) -> bool:
        if not self.deferring:
            return True
        if now - queued_at >= self._max_defer:
            return True
        return self._running < self._busy_concurrency

    @asynccontextmanager
    async def admit(self, queued_at_ms: float) -> AsyncIterator[None]:
        """Waits until the job queued at `queued_at_ms` (epoch milliseconds) may run, then
        counts it as running until the block ends."""
        queued_at = queued_at_ms / 1000
        started = time.time()
        while not self._may_run(queued_at, time.time()):
            self._changed.clear()
            remaining = queued_at + self._max_defer - time.time()
            with suppress(TimeoutError):  # the job has waited long enough: the loop lets it run
                await asyncio.wait_for(self._changed.wait(), timeout=max(remaining, 0.0))
        waited = time.time() - started
        if waited > 0.05:
            DEFERRED_SECONDS.labels(self._queue).observe(waited)
        self._running += 1
        try:
            yield
        finally:
            self._running -= 1
            self._changed.set()
