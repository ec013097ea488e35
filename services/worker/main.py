"""`betterworld worker`: the worker process's composition root and lifecycle.

The worker has no jobs of its own: it builds the consumers every registered service declares
(`ServiceDefinition.jobs`), starts them together and stops them together. It runs the same
server lifecycle as the services, with no RPCs of its own: gRPC health and readiness (driven by
its dependencies, NOT_SERVING while it drains) for probes, and its metrics endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from services.core import business_refresh
from services.core.deferral import LoadWatch
from services.core.definition import ServiceDefinition
from services.core.idle import make_process_idle
from services.core.jobs import JobConsumer, PeriodicTask, WorkerResources
from services.core.logging import get_logger
from services.core.runtime import Runtime, build_runtime
from services.core.server import ServiceServer, freeze_startup_objects
from services.core.settings import Settings
from services.ops.backup_jobs import consumers as backup_consumers
from services.registry import REGISTRY, Registry

log = get_logger(__name__)

WORKER = ServiceDefinition(
    name="worker",
    contract=(),
    port=50055,
    metrics_port=9105,
    register=lambda server, runtime: None,
)
"""The worker as a server: health, readiness and metrics, no RPCs of its own."""


@dataclass
class Consumers:
    """The worker process's consumers, started in registry order and stopped in reverse."""

    items: list[JobConsumer]
    load: LoadWatch | None = None

    def start(self) -> None:
        """Starts the load watch that defers jobs while the machine is busy, then every
        consumer."""
        if self.load is not None:
            self.load.start()
        for consumer in self.items:
            consumer.start()

    async def stop(self, *, force: bool = False) -> None:
        """Stops them; running jobs finish unless `force` (which abandons them, as a crash)."""
        if self.load is not None:
            await self.load.stop()
        for consumer in reversed(self.items):
            await consumer.stop(force=force)

    def of_type(self, kind: type[Any]) -> Any:
        """The consumer of this type (for tests and diagnostics)."""
        return next(c for c in self.items if isinstance(c, kind))


async def build_worker(
    settings: Settings,
    runtime: Runtime,
    *,
    registry: Registry = REGISTRY,
    provided: Mapping[str, Any] | None = None,
) -> Consumers:
    """The consumers of every registered service; `provided` passes components already built
    (a classifier, in tests)."""
    load = load_watch(settings)
    resources = WorkerResources(settings, runtime, load, provided or {})
    items: list[JobConsumer] = []
    for definition in registry.definitions:
        if definition.jobs is not None:
            items += await definition.jobs(resources)
    gauges = business_gauges_task(registry, runtime)
    if gauges is not None:
        items.append(gauges)
    items += await backup_consumers(resources)  # daily backup, weekly verify (BACKUP_SCHEDULE_*)
    return Consumers(items, load)


def business_gauges_task(registry: Registry, runtime: Runtime) -> PeriodicTask | None:
    """The round computing the business gauges the services declare (None when none does);
    the worker's metrics endpoint exports them from the start, valueless until the first
    round."""
    declarations = business_refresh.declared(registry.definitions)
    if not declarations:
        return None
    return PeriodicTask(
        business_refresh.TASK_NAME,
        lambda: business_refresh.refresh_business_gauges(declarations, runtime),
        interval=business_refresh.REFRESH_INTERVAL_SECONDS,
    )


def load_watch(settings: Settings) -> LoadWatch | None:
    """The machine-load watch behind job deferral; None when WORKER_DEFER_SECONDS is 0 or
    the load cannot be read here (not Linux)."""
    if settings.worker_defer_seconds <= 0:
        return None
    watch = LoadWatch(settings.worker_defer_above)
    if not watch.available:
        log.info("worker_defer_unavailable", reason="no /proc/stat")
        return None
    return watch


def lower_priority(settings: Settings) -> str:
    """Background work; requests come first. Returns the policy applied."""
    if settings.worker_idle_priority and make_process_idle():
        return "idle"
    if settings.worker_nice:
        os.nice(settings.worker_nice)
        return f"nice {settings.worker_nice}"
    return "normal"


async def run_worker(settings: Settings) -> int:
    """Consumes until SIGTERM/SIGINT; then reports NOT_SERVING, lets running jobs finish and
    closes everything."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    lower_priority(settings)
    runtime = build_runtime(settings)
    worker = await build_worker(settings, runtime)
    server = ServiceServer(
        WORKER,
        runtime,
        host=settings.host,
        port=settings.worker_port,
        metrics_port=settings.metrics_port_worker,
    )
    await server.start()
    worker.start()
    freeze_startup_objects()
    log.info("worker_started", concurrency=settings.worker_concurrency, port=server.port)
    await stop.wait()
    log.info("worker_stopping")
    await server.monitor.enter_shutdown()
    try:
        # Running jobs get the grace period; a consumer that does not stop by then (a job that
        # ignores it) must not keep the process alive: its jobs return to the queue when their
        # locks lapse.
        await asyncio.wait_for(worker.stop(), settings.grace_seconds + 5)
    except TimeoutError:
        log.error("worker_forced_exit_after_grace")
        with contextlib.suppress(Exception):
            await asyncio.wait_for(worker.stop(force=True), 10)
    await server.stop(settings.grace_seconds)
    await runtime.close()
    return 0
