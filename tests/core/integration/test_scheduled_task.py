"""A scheduled slot on a real Valkey shared by several workers: it runs once however many
contend for it, a failed slot is tried again after a pause, a worker that dies mid-slot hands it
over when its lease lapses (and one that lives keeps it), and a slot missed by too long is left
for the next one."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis

from services.core.schedule import Schedule, ScheduledTask
from tooling.devstack import EmbeddedValkey

SLOT = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)


class Clock:
    """A wall clock the test moves."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Work:
    """Counts the slots it was asked to do; fails while `failing`."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.seconds = seconds
        self.slots: list[datetime] = []
        self.failing = False

    async def __call__(self, slot: datetime) -> None:
        self.slots.append(slot)
        await asyncio.sleep(self.seconds)
        if self.failing:
            raise RuntimeError("pg_dump failed")


@pytest.fixture
async def redis(valkey: EmbeddedValkey) -> AsyncIterator[Redis]:
    client = Redis.from_url(valkey.url)
    yield client
    await client.aclose()


def contenders(
    redis: Redis, work: Work, clock: Clock, n: int = 2, **options: timedelta
) -> list[ScheduledTask]:
    """`n` workers' copies of one task."""
    name = f"backup-{uuid.uuid4().hex[:8]}"
    return [
        ScheduledTask(name, work, Schedule.parse("03:00"), redis, clock=clock, **options)
        for _ in range(n)
    ]


async def test_a_due_slot_runs_once_among_contenders(redis: Redis) -> None:
    work, clock = Work(seconds=0.3), Clock(SLOT + timedelta(seconds=20))
    tasks = contenders(redis, work, clock, n=3)
    ran = await asyncio.gather(*(t.tick() for t in tasks))
    assert sorted(ran) == [False, False, True]
    assert work.slots == [SLOT]
    clock.now += timedelta(minutes=10)  # the same slot, later: done already
    assert await asyncio.gather(*(t.tick() for t in tasks)) == [False, False, False]
    clock.now = SLOT + timedelta(days=1, seconds=5)  # the next day's slot
    assert sorted(await asyncio.gather(*(t.tick() for t in tasks))) == [False, False, True]
    assert work.slots == [SLOT, SLOT + timedelta(days=1)]


async def test_nothing_runs_before_the_slot(redis: Redis) -> None:
    work = Work()
    clock = Clock(SLOT - timedelta(seconds=1))
    (task,) = contenders(redis, work, clock, n=1, catch_up=timedelta(hours=6))
    assert not await task.tick()  # yesterday's slot is 24 h old: past the catch-up window
    clock.now = SLOT
    assert await task.tick()
    assert work.slots == [SLOT]


async def test_a_failed_slot_is_tried_again_after_a_pause(redis: Redis) -> None:
    work, clock = Work(), Clock(SLOT + timedelta(seconds=5))
    work.failing = True
    first, second = contenders(redis, work, clock, retry_after=timedelta(seconds=0.5))
    assert await first.tick()  # it ran, and failed
    assert not await second.tick()  # not at once: the failure holds the slot for a while
    await asyncio.sleep(0.6)
    work.failing = False
    assert await second.tick()
    assert not await first.tick()  # done now
    assert work.slots == [SLOT, SLOT]


async def test_a_slot_whose_worker_died_is_taken_over_when_its_lease_lapses(
    redis: Redis,
) -> None:
    work, clock = Work(), Clock(SLOT + timedelta(seconds=5))
    (task,) = contenders(redis, work, clock, n=1)
    # A worker took the lease for this slot and died before recording anything.
    dead = redis.lock(f"{task.slot_key(SLOT)}:lease", timeout=0.5, blocking=False)
    assert await dead.acquire()
    assert not await task.tick()
    await asyncio.sleep(0.6)
    assert await task.tick()
    assert work.slots == [SLOT]


async def test_a_long_slot_keeps_its_lease(redis: Redis) -> None:
    work, clock = Work(seconds=1.2), Clock(SLOT + timedelta(seconds=5))
    first, second = contenders(redis, work, clock, lease=timedelta(seconds=0.3))
    running = asyncio.create_task(first.tick())
    for _ in range(4):  # well past the lease's length, while the first still works
        await asyncio.sleep(0.25)
        assert not await second.tick()
    assert await running
    assert work.slots == [SLOT]


async def test_the_running_task_finds_its_slot_and_stops(redis: Redis) -> None:
    work, clock = Work(), Clock(SLOT + timedelta(seconds=5))
    (task,) = contenders(redis, work, clock, n=1)
    task.POLL_SECONDS = 0.05
    task.start()
    for _ in range(100):
        if work.slots:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.2)  # more looks at the clock: still one run
    await task.stop()
    assert work.slots == [SLOT]
