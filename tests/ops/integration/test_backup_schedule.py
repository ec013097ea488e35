"""The worker's backup schedule on a real PostgreSQL and Valkey, the clock moved by the test: at
03:00 UTC one of two workers backs up and prunes, Sunday 04:00 verifies the newest backup (and
no other day does), a failed backup is logged and counted and leaves the last-success time
alone, and the schedule is on in production only unless BACKUP_SCHEDULE_ENABLED says."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import structlog
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from services.core.jobs import WorkerResources
from services.core.migrate import upgrade
from services.core.runtime import build_runtime
from services.core.schedule import ScheduledTask
from services.core.settings import Settings
from services.ops.backup import Backups
from services.ops.backup_jobs import backup_rounds, backup_tasks, consumers, schedule_enabled
from services.ops.backup_store import LocalBackupStore
from tests.support.databases import scratch_database
from tooling.devstack import EmbeddedPostgres, EmbeddedValkey, free_port

SUNDAY_0400 = datetime(2026, 12, 6, 4, 0, tzinfo=UTC)
MONDAY_0300 = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def runs(kind: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("backup_runs_total", {"kind": kind, "outcome": outcome}) or 0


def last_success(kind: str) -> float | None:
    return REGISTRY.get_sample_value("backup_last_success_timestamp_seconds", {"kind": kind})


@pytest.fixture
def drill_url(postgres: EmbeddedPostgres) -> Iterator[str]:
    with scratch_database(postgres, "bw_sched") as url:
        upgrade(url)
        yield url


@pytest.fixture
async def redis(valkey: EmbeddedValkey) -> AsyncIterator[Redis]:
    client = Redis.from_url(valkey.url)
    await client.flushall()  # no slot outcome left by another test
    yield client
    await client.aclose()


def workers(
    settings: Settings, url: str, directory: Path, redis: Redis, clock: Clock, n: int = 2
) -> list[list[ScheduledTask]]:
    """`n` worker processes' backup tasks (create, verify) over one database and store."""
    return [
        backup_tasks(
            settings,
            redis,
            backups=Backups(url, LocalBackupStore(directory), clock=clock),
            clock=clock,
        )
        for _ in range(n)
    ]


async def test_one_of_two_workers_backs_up_at_0300_and_prunes(
    settings: Settings, drill_url: str, redis: Redis, tmp_path: Path
) -> None:
    clock = Clock(MONDAY_0300 + timedelta(seconds=20))
    directory = tmp_path / "backups"
    before = {k: runs(k, "success") for k in ("create", "prune", "verify")}
    (create_a, verify_a), (create_b, _) = workers(settings, drill_url, directory, redis, clock)
    assert sorted(await asyncio.gather(create_a.tick(), create_b.tick())) == [False, True]
    made = await Backups(drill_url, LocalBackupStore(directory)).all()
    assert [m.name for m in made] == ["20261207T030020Z-daily"]
    assert runs("create", "success") == before["create"] + 1
    assert runs("prune", "success") == before["prune"] + 1
    assert last_success("create") == clock.now.timestamp()
    assert REGISTRY.get_sample_value("backup_last_size_bytes") == made[0].size_bytes
    assert not await verify_a.tick()  # Monday: no verification
    assert runs("verify", "success") == before["verify"]

    clock.now += timedelta(hours=2)
    assert not await create_a.tick() and not await create_b.tick()  # once a day
    assert len(await Backups(drill_url, LocalBackupStore(directory)).all()) == 1


async def test_the_newest_backup_is_verified_on_sunday_at_0400(
    settings: Settings, drill_url: str, redis: Redis, tmp_path: Path
) -> None:
    directory = tmp_path / "backups"
    backups = Backups(drill_url, LocalBackupStore(directory))
    made = await backups.create(now=SUNDAY_0400 - timedelta(hours=1))
    # Every worker reads the newest backup's time from the store, whichever made it.
    await backup_rounds(settings, backups=backups).publish_newest()
    newest = REGISTRY.get_sample_value("backup_newest_timestamp_seconds")
    assert newest == made.created.timestamp()
    clock = Clock(SUNDAY_0400 - timedelta(days=3, minutes=-1))  # a Thursday, 04:01
    ((_, verify),) = workers(settings, drill_url, directory, redis, clock, n=1)
    assert not await verify.tick()
    clock.now = SUNDAY_0400 + timedelta(seconds=30)
    succeeded = runs("verify", "success")
    assert await verify.tick()
    assert runs("verify", "success") == succeeded + 1
    assert last_success("verify") == clock.now.timestamp()

    # The next Sunday, the backup no longer restores to what its manifest says: a failure.
    lied = {**asdict(made), "tables": {**made.tables, "humans": made.tables["humans"] + 1}}
    (directory / f"{made.name}.json").write_text(json.dumps(lied))
    clock.now += timedelta(days=7)
    failed = runs("verify", "failure")
    with structlog.testing.capture_logs() as logs:
        assert await verify.tick()
    assert runs("verify", "failure") == failed + 1
    assert last_success("verify") == (clock.now - timedelta(days=7)).timestamp()
    failure = next(e for e in logs if e["event"] == "scheduled_task_failed")
    assert failure["task"] == "backup-verify" and failure["log_level"] == "error"


async def test_a_failed_backup_is_logged_and_counted_and_nothing_is_pruned(
    settings: Settings, redis: Redis, tmp_path: Path
) -> None:
    unreachable = f"postgresql+asyncpg://betterworld@127.0.0.1:{free_port()}/gone"
    clock = Clock(MONDAY_0300 + timedelta(days=1, seconds=3))
    ((create, _),) = workers(settings, unreachable, tmp_path / "b", redis, clock, n=1)
    failures, prunes = runs("create", "failure"), runs("prune", "success")
    success_before = last_success("create")
    with structlog.testing.capture_logs() as logs:
        assert await create.tick()
    assert runs("create", "failure") == failures + 1
    assert runs("prune", "success") == prunes  # not after a failed backup
    assert last_success("create") == success_before
    failure = next(e for e in logs if e["event"] == "scheduled_task_failed")
    assert failure["task"] == "backup-create" and failure["log_level"] == "error"
    assert "cannot reach the database" in failure["error"]
    assert not list((tmp_path / "b").iterdir()), "no partial dump is left"


async def test_the_schedule_is_on_in_production_and_where_enabled(settings: Settings) -> None:
    assert not schedule_enabled(settings)  # development
    assert schedule_enabled(settings.model_copy(update={"environment": "production"}))
    assert not schedule_enabled(
        settings.model_copy(update={"environment": "production", "backup_schedule_enabled": False})
    )
    runtime = build_runtime(settings)
    try:
        assert await consumers(WorkerResources(settings, runtime, None)) == []
        enabled = settings.model_copy(update={"backup_schedule_enabled": True})
        tasks = await consumers(WorkerResources(enabled, runtime, None))
        assert [t.name for t in tasks] == ["backup-create", "backup-verify", "backup-newest"]
        assert all(isinstance(t, ScheduledTask) for t in tasks[:2])
        assert tasks[0].schedule.next(MONDAY_0300) == MONDAY_0300 + timedelta(days=1)
        assert tasks[1].schedule.next(MONDAY_0300) == SUNDAY_0400 + timedelta(days=7)
    finally:
        await runtime.close()
    assert runs("create", "failure") is not None  # every series exported from the start
