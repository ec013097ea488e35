"""The worker's backup schedule: a backup every day (BACKUP_CREATE_AT, then the retention's prune)
and a verification of the newest backup every week (BACKUP_VERIFY_AT), each slot run by one
worker process however many there are, with its outcome counted for alerts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

from prometheus_client import Counter, Gauge
from redis.asyncio import Redis

from services.core.clock import utc_now
from services.core.jobs import JobConsumer, PeriodicTask, WorkerResources
from services.core.logging import get_logger
from services.core.schedule import Schedule, ScheduledTask
from services.core.settings import Settings
from services.ops.backup import Backups
from services.ops.backup_store import open_backup_store
from services.ops.errors import BackupError

log = get_logger(__name__)
T = TypeVar("T")

KINDS = ("create", "prune", "verify")
OUTCOMES = ("success", "failure")
BACKUP_RUNS = Counter(
    "backup_runs_total",
    "Scheduled backup work by kind (create, prune, verify) and outcome (success, failure)",
    ["kind", "outcome"],
)
BACKUP_LAST_SUCCESS = Gauge(
    "backup_last_success_timestamp_seconds",
    "When scheduled backup work of each kind last succeeded (Unix time)",
    ["kind"],
)
BACKUP_LAST_SIZE = Gauge(
    "backup_last_size_bytes", "Size of the dump of the newest scheduled backup"
)
BACKUP_NEWEST = Gauge(
    "backup_newest_timestamp_seconds",
    "When the newest backup in the store was taken (Unix time), read from the store by every "
    "worker whichever made it",
)
NEWEST_INTERVAL_SECONDS = 900.0


def schedule_enabled(settings: Settings) -> bool:
    """BACKUP_SCHEDULE_ENABLED, else on in production only."""
    if settings.backup_schedule_enabled is not None:
        return settings.backup_schedule_enabled
    return settings.environment == "production"


class BackupRounds:
    """What the schedule's slots do, each step counted by kind and outcome."""

    def __init__(self, backups: Backups, *, clock: Callable[[], datetime] = utc_now) -> None:
        self.backups = backups
        self._clock = clock

    async def _counted(self, kind: str, work: Awaitable[T]) -> T:
        try:
            result = await work
        except Exception:
            BACKUP_RUNS.labels(kind, "failure").inc()
            raise
        BACKUP_RUNS.labels(kind, "success").inc()
        BACKUP_LAST_SUCCESS.labels(kind).set(self._clock().timestamp())
        return result

    async def daily(self, slot: datetime) -> None:
        """Backs up, then prunes what the retention no longer keeps (not after a failed
        backup: the old ones are all there is then)."""
        made = await self._counted("create", self.backups.create(label="daily", now=self._clock()))
        BACKUP_LAST_SIZE.set(made.size_bytes)
        log.info("backup_created", backup=made.name, size_bytes=made.size_bytes, slot=str(slot))
        deleted = await self._counted("prune", self.backups.prune(now=self._clock()))
        log.info("backups_pruned", deleted=[m.name for m in deleted])

    async def weekly(self, slot: datetime) -> None:
        """Restores the newest backup into a scratch database and compares it with its
        manifest; a difference is a failure."""
        await self._counted("verify", self._verify())

    async def publish_newest(self) -> None:
        """Sets backup_newest_timestamp_seconds from the store: the age of the newest backup is
        known after a restart and in every worker, not only in the one that made it."""
        backups = await self.backups.all()
        if backups:
            BACKUP_NEWEST.set(backups[-1].created.timestamp())

    async def _verify(self) -> None:
        result = await self.backups.verify()
        if not result.ok:
            raise BackupError(
                f"backup {result.manifest.name} failed verification: "
                + "; ".join(result.differences)
            )
        log.info("backup_verified", backup=result.manifest.name)


def backup_tasks(
    settings: Settings,
    redis: Redis,
    *,
    backups: Backups | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> list[ScheduledTask]:
    """The daily backup and the weekly verification as scheduled tasks."""
    return scheduled(backup_rounds(settings, backups=backups, clock=clock), settings, redis, clock)


def backup_rounds(
    settings: Settings,
    *,
    backups: Backups | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> BackupRounds:
    """The work of the schedule over the store BACKUP_STORAGE names."""
    return BackupRounds(
        backups or Backups(settings.database_url, open_backup_store(settings), clock=clock),
        clock=clock,
    )


def scheduled(
    rounds: BackupRounds, settings: Settings, redis: Redis, clock: Callable[[], datetime]
) -> list[ScheduledTask]:
    """The rounds at BACKUP_CREATE_AT and BACKUP_VERIFY_AT."""
    return [
        ScheduledTask(
            "backup-create",
            rounds.daily,
            Schedule.parse(settings.backup_create_at),
            redis,
            clock=clock,
        ),
        ScheduledTask(
            "backup-verify",
            rounds.weekly,
            Schedule.parse(settings.backup_verify_at),
            redis,
            clock=clock,
        ),
    ]


async def consumers(resources: WorkerResources) -> list[JobConsumer]:
    """The backup schedule, when BACKUP_SCHEDULE_ENABLED (or production) says so."""
    for kind in KINDS:  # every series exists from the start, so alerts can compare with 0
        for outcome in OUTCOMES:
            BACKUP_RUNS.labels(kind, outcome)
    settings = resources.settings
    if not schedule_enabled(settings):
        log.info("backup_schedule_off")
        return []
    log.info(
        "backup_schedule_on",
        create_at=settings.backup_create_at,
        verify_at=settings.backup_verify_at,
        storage=settings.backup_storage,
    )
    rounds = backup_rounds(settings)
    newest = PeriodicTask("backup-newest", rounds.publish_newest, interval=NEWEST_INTERVAL_SECONDS)
    return [*scheduled(rounds, settings, resources.runtime.redis, utc_now), newest]
