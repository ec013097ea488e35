"""Work at fixed wall-clock times (a UTC time each day, or one weekday a week), run once per slot
however many worker processes watch the same schedule.

`ScheduledTask` looks at the clock every POLL_SECONDS rather than sleeping
until the next slot, so a suspended machine, a clock correction or a worker started late still
finds the slot due. A slot runs at most once across processes: a contender first takes a lease
in Redis (redis-py's `Lock`, renewed while the work runs, so another process takes over a slot
whose worker died), then records the outcome under the slot's key: `done` ends the slot,
`failed` lets it be tried again after `retry_after` within the catch-up window. A slot missed
for longer than `catch_up` is skipped: the next one comes.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis
from redis.asyncio.lock import Lock
from redis.exceptions import LockError

from services.core.clock import utc_now
from services.core.jobs import finish
from services.core.logging import get_logger

log = get_logger(__name__)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPEC = re.compile(r"^(?:(?P<day>[a-z]{3}) )?(?P<hour>\d{2}):(?P<minute>\d{2})$")


@dataclass(frozen=True)
class Schedule:
    """Slots at one UTC time of day, every day or on one weekday."""

    hour: int
    minute: int
    weekday: int | None = None
    """0 is Monday (as `datetime.weekday()`); None: every day."""

    @classmethod
    def parse(cls, spec: str) -> Schedule:
        """`"03:00"` (daily) or `"sun 04:00"` (weekly), in UTC."""
        match = _SPEC.match(spec.strip().lower())
        if match is None or (match["day"] and match["day"] not in WEEKDAYS):
            raise ValueError(f"not a schedule: {spec!r} (expected HH:MM or <weekday> HH:MM)")
        hour, minute = int(match["hour"]), int(match["minute"])
        if hour > 23 or minute > 59:
            raise ValueError(f"not a time of day: {spec!r}")
        return cls(hour, minute, WEEKDAYS.index(match["day"]) if match["day"] else None)

    @property
    def period(self) -> timedelta:
        """The time between two slots."""
        return timedelta(days=1 if self.weekday is None else 7)

    def latest(self, now: datetime) -> datetime:
        """The last slot at or before `now`."""
        now = now.astimezone(UTC)
        slot = now.replace(hour=self.hour, minute=self.minute, second=0, microsecond=0)
        if self.weekday is not None:
            slot -= timedelta(days=(slot.weekday() - self.weekday) % 7)
        return slot if slot <= now else slot - self.period

    def next(self, now: datetime) -> datetime:
        """The first slot after `now`."""
        return self.latest(now) + self.period


class ScheduledTask:
    """A `JobConsumer` that runs `run(slot)` once per slot of `schedule` among every process
    sharing `redis`."""

    POLL_SECONDS = 30.0
    STOP_WAIT_SECONDS = 30.0

    def __init__(
        self,
        name: str,
        run: Callable[[datetime], Awaitable[object]],
        schedule: Schedule,
        redis: Redis,
        *,
        clock: Callable[[], datetime] = utc_now,
        catch_up: timedelta = timedelta(hours=6),
        retry_after: timedelta = timedelta(minutes=15),
        lease: timedelta = timedelta(minutes=2),
    ) -> None:
        self.name = name
        self.schedule = schedule
        self._run = run
        self._redis = redis
        self._clock = clock
        self._catch_up = catch_up
        self._retry_after = retry_after
        self._lease = lease
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def slot_key(self, slot: datetime) -> str:
        """Where the outcome of a slot is kept."""
        return f"schedule:{self.name}:{slot.strftime('%Y%m%dT%H%MZ')}"

    async def tick(self) -> bool:
        """Runs the due slot if no process has done it and this one wins it; True if it ran."""
        now = self._clock()
        slot = self.schedule.latest(now)
        if now - slot > self._catch_up:
            return False
        key = self.slot_key(slot)
        if await self._redis.exists(key):
            return False
        lock = self._redis.lock(f"{key}:lease", timeout=self._lease.total_seconds(), blocking=False)
        if not await lock.acquire():
            return False
        try:
            if await self._redis.exists(key):  # finished while this process looked
                return False
            await self._run_slot(slot, key, lock)
            return True
        finally:
            with contextlib.suppress(LockError):  # the lease lapsed: someone may hold it now
                await lock.release()

    async def _run_slot(self, slot: datetime, key: str, lock: Lock) -> None:
        renewing = asyncio.create_task(self._renew(lock))
        try:
            await self._run(slot)
        except Exception as exc:
            log.error(
                "scheduled_task_failed",
                task=self.name,
                slot=slot.isoformat(),
                error=str(exc),
                exc_info=True,
            )
            retry_ms = int(self._retry_after.total_seconds() * 1000)
            await self._redis.set(key, b"failed", px=retry_ms)
        else:
            # Kept past the catch-up window, when the slot stops being due anyway.
            kept = int((self._catch_up + self._lease).total_seconds())
            await self._redis.set(key, b"done", ex=kept)
        finally:
            renewing.cancel()
            await asyncio.gather(renewing, return_exceptions=True)

    async def _renew(self, lock: Lock) -> None:
        while True:
            await asyncio.sleep(self._lease.total_seconds() / 3)
            try:
                await lock.reacquire()
            except LockError:
                log.error("scheduled_task_lease_lost", task=self.name)
                return

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.tick()
            except Exception:  # Redis away for a moment: the next look may find the slot
                log.warning("scheduled_task_tick_failed", task=self.name, exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.POLL_SECONDS)

    def start(self) -> None:
        """Starts looking at the clock."""
        self._task = asyncio.create_task(self._loop(), name=self.name)

    async def stop(self, *, force: bool = False) -> None:
        """Stops; a slot being worked on gets STOP_WAIT_SECONDS to finish unless `force`, then
        is cancelled (its lease is released, so another process may take the slot again)."""
        self._stopping.set()
        await finish(self._task, wait_seconds=self.STOP_WAIT_SECONDS, force=force)
