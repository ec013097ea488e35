"""job_duration_seconds: every periodic round and every job attempt is timed, by outcome."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY

from services.core.jobs import PeriodicTask, timed_job


def _observed(queue: str, outcome: str) -> tuple[float, float]:
    labels = {"queue": queue, "outcome": outcome}
    count = REGISTRY.get_sample_value("job_duration_seconds_count", labels) or 0.0
    total = REGISTRY.get_sample_value("job_duration_seconds_sum", labels) or 0.0
    return count, total


async def test_periodic_rounds_are_timed_by_outcome() -> None:
    rounds = 0

    async def round() -> None:
        nonlocal rounds
        rounds += 1
        await asyncio.sleep(0.05)
        if rounds == 2:
            raise RuntimeError("this round fails")

    task = PeriodicTask("test-rounds", round, interval=0.01)
    task.start()
    while rounds < 3:
        await asyncio.sleep(0.01)
    await task.stop()
    completed, completed_seconds = _observed("test-rounds", "completed")
    failed, failed_seconds = _observed("test-rounds", "failed")
    assert (completed, failed) == (rounds - 1, 1)
    assert completed_seconds >= 0.05 * completed and failed_seconds >= 0.05


async def test_a_cancelled_job_is_not_an_outcome() -> None:
    async def job() -> None:
        with timed_job("test-cancelled"):
            await asyncio.sleep(10)

    running = asyncio.create_task(job())
    await asyncio.sleep(0.01)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert _observed("test-cancelled", "completed") == (0.0, 0.0)
    assert _observed("test-cancelled", "failed") == (0.0, 0.0)


def test_a_failing_job_is_timed_and_its_error_passes_through() -> None:
    with pytest.raises(ValueError, match="bad job"), timed_job("test-failing"):
        raise ValueError("bad job")
    assert _observed("test-failing", "failed")[0] == 1
