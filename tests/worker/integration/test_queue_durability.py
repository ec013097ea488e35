"""No accepted write is lost: a crashed worker, a restarted Redis and a wiped queue."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from betterworld.common.v1 import common_pb2
from betterworld.content.v1 import content_pb2 as pb
from bullmq import Queue
from sqlalchemy import func, select

from services.content.definition import DEFINITION
from services.core.queues import GUARDRAIL_QUEUE
from services.core.settings import Settings
from services.guardrail.classifier.base import Classification, ContentItem
from services.guardrail.tables import evaluations
from tests.support.content import ContentClient, eventually, start_worker
from tests.support.helpers import start_service
from tooling.devstack import EmbeddedValkey, free_port


class StuckModel:
    """A model call that never returns, so the job is mid-flight when its worker dies."""

    name = "stuck-model"

    def __init__(self) -> None:
        self.started = asyncio.Event()

    async def classify(self, item: ContentItem) -> Classification:
        self.started.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


@pytest.fixture
def own_valkey(tmp_path: Path) -> Iterator[EmbeddedValkey]:
    """A Valkey this test may restart without disturbing the others."""
    server = EmbeddedValkey(tmp_path / "valkey", port=free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def _decided(content: ContentClient, author: Any, problem_id: str) -> bool:
    current = await content.content.GetProblem(
        pb.GetProblemRequest(problem_id=problem_id), metadata=author.auth
    )
    return current.guardrail_status != common_pb2.PENDING  # type: ignore[no-any-return]


async def test_a_job_of_a_crashed_worker_is_finished_by_another_once(
    content: ContentClient, local_classifier: Any
) -> None:
    settings = content.settings.model_copy(
        update={"content_internal_target": content.service.address, "worker_lock_seconds": 1.5}
    )
    stuck = StuckModel()
    first = await start_worker(settings, stuck)
    author = await content.agent()
    problem = await content.problem(author)
    await asyncio.wait_for(stuck.started.wait(), 20)
    await first.stop(force=True)  # the crash: the job is abandoned mid-evaluation

    second = await start_worker(settings, local_classifier)
    try:
        await eventually(lambda: _decided(content, author, problem.problem_id), timeout=40)
    finally:
        await second.stop()
    async with content.service.runtime.engine.connect() as conn:
        stored = (await conn.execute(select(func.count()).select_from(evaluations))).scalar_one()
    assert stored == 1


@pytest.fixture
async def durable(
    content_settings: Settings, own_valkey: EmbeddedValkey, clean_state: None
) -> AsyncIterator[ContentClient]:
    settings = content_settings.model_copy(update={"redis_url": own_valkey.url})
    service = await start_service(DEFINITION, settings)
    try:
        yield ContentClient(service, settings)
    finally:
        await service.stop()


async def test_queued_jobs_survive_a_redis_restart_and_a_lost_queue_is_swept(
    durable: ContentClient, own_valkey: EmbeddedValkey, local_classifier: Any
) -> None:
    author = await durable.agent()
    queued = [await durable.problem(author) for _ in range(3)]
    await asyncio.sleep(1.5)  # appendfsync everysec
    await asyncio.to_thread(own_valkey.restart)
    lost = await durable.problem(author)
    queue = Queue(GUARDRAIL_QUEUE, {"connection": own_valkey.url})
    await queue.remove(lost.guardrail_evaluation_id)  # vanished, e.g. after the last fsync
    assert await queue.getJobState(lost.guardrail_evaluation_id) == "unknown"

    settings = durable.settings.model_copy(
        update={
            "content_internal_target": durable.service.address,
            "sweep_interval_seconds": 0.5,
            "sweep_pending_after_seconds": 1.0,
        }
    )
    worker = await start_worker(settings, local_classifier)
    try:
        for problem in (*queued, lost):
            await eventually(lambda p=problem: _decided(durable, author, p.problem_id), 40)

        # The sweep queued the lost one again under its own evaluation id (the job completes
        # once the item is embedded too, just after its decision).
        async def completed() -> bool:
            return await queue.getJobState(lost.guardrail_evaluation_id) == "completed"

        await eventually(completed, 10)
    finally:
        await worker.stop()
        await queue.close()
