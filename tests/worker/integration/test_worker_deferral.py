"""The worker steps aside while the machine is busy: one job at a time, then full speed again."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from betterworld.common.v1 import common_pb2
from betterworld.content.v1 import content_pb2 as pb
from prometheus_client import REGISTRY

from services.core.deferral import LoadWatch
from services.guardrail.classifier.base import Classification, ContentItem
from services.guardrail.classifier.local import LocalClassifier
from tests.support.content import ContentClient, eventually


class Recording:
    """The local classifier, slowed down as a model API is, counting calls in flight."""

    name = "recording-local"

    def __init__(self, inner: LocalClassifier, seconds: float) -> None:
        self._inner = inner
        self._seconds = seconds
        self.running = 0
        self.peak = 0

    async def classify(self, item: ContentItem) -> Classification:
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await asyncio.sleep(self._seconds)
            return await self._inner.classify(item)
        finally:
            self.running -= 1


def _deferred_jobs() -> float:
    return (
        REGISTRY.get_sample_value(
            "worker_deferred_seconds_count", {"queue": "guardrail-evaluation"}
        )
        or 0.0
    )


async def _create_and_decide(content: ContentClient, author: Any, batch: str) -> None:
    problems = [
        await content.problem(
            author, title=f"Lake Merritt water quality, survey {batch}-{n}: algae and fish die-offs"
        )
        for n in range(4)
    ]

    async def decided() -> bool:
        for problem in problems:
            current = await content.content.GetProblem(
                pb.GetProblemRequest(problem_id=problem.problem_id), metadata=author.auth
            )
            if current.guardrail_status == common_pb2.PENDING:
                return False
        return True

    await eventually(decided, timeout=20)


async def _others_cores(seconds: float = 1.0) -> float:
    """Cores that processes other than this one use now (a CI machine may not be idle)."""
    watch = LoadWatch(threshold=1.0)
    watch.sample()
    await asyncio.sleep(seconds)
    watch.sample()
    return watch.others_cores


async def _deferring_worker(run_worker: Any, model: Recording, defer_seconds: float) -> Any:
    # Busy means: processes other than this one (which runs the worker) use half a core more
    # than they did before the test; the burner below adds a whole one.
    return await run_worker(
        model,
        worker_defer_seconds=defer_seconds,
        worker_defer_above=(await _others_cores() + 0.5) / (os.cpu_count() or 1),
    )


@asynccontextmanager
async def _busy_machine(worker: Any) -> AsyncIterator[None]:
    """Another process spins on a core until the block ends; the worker has seen it first."""
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        await eventually(lambda: _true(worker.consumers.load.busy), timeout=10)
        yield
    finally:
        burner.kill()
        burner.wait()


async def test_a_busy_machine_gets_one_evaluation_at_a_time_and_a_calm_one_all(
    content: ContentClient, run_worker: Any, local_classifier: LocalClassifier
) -> None:
    model = Recording(local_classifier, seconds=0.3)
    worker = await _deferring_worker(run_worker, model, defer_seconds=20)
    author = await content.agent()
    async with _busy_machine(worker):
        deferred_before = _deferred_jobs()
        await _create_and_decide(content, author, "busy")
        assert model.peak == 1
        assert _deferred_jobs() > deferred_before  # some waited for the one before them
    await eventually(lambda: _true(not worker.consumers.load.busy), timeout=10)
    model.peak = 0
    await _create_and_decide(content, author, "calm")
    assert model.peak > 1


async def test_stopping_runs_the_held_jobs_instead_of_waiting_out_the_load(
    content: ContentClient, run_worker: Any, local_classifier: LocalClassifier
) -> None:
    model = Recording(local_classifier, seconds=0.5)
    worker = await _deferring_worker(run_worker, model, defer_seconds=60)
    author = await content.agent()
    async with _busy_machine(worker):
        problems = [
            await content.problem(author, title=f"Lake Merritt algae bloom report number {n}")
            for n in range(3)
        ]
        await eventually(lambda: _true(model.peak == 1), timeout=10)
        started = asyncio.get_running_loop().time()
        await worker.consumers.stop()
        assert asyncio.get_running_loop().time() - started < 5  # not the 60 s deferral
    for problem in problems:
        current = await content.content.GetProblem(
            pb.GetProblemRequest(problem_id=problem.problem_id), metadata=author.auth
        )
        assert current.guardrail_status != common_pb2.PENDING


async def _true(value: bool) -> bool:
    return value
