"""The platform's live activity feed: events in one Redis Stream, fanned out to subscribers.

Producers `publish()` an event after their business operation committed; it is appended with
XADD to one stream (`bw:activity` by default) whose entry id (`1733580000000-0`: the Redis
server's milliseconds, then a sequence number) is the event's id, its position in the feed and
the resume token a client hands back to continue where it left off. Publishing is best effort:
an event that cannot be written is logged and dropped, never an error of the operation that
already happened.

Retention is the stream itself: every XADD trims it approximately (`MAXLEN ~`, 10,000 entries by
default, so a little more is kept until Redis can drop a whole node). A client that was away
for longer than that gets what is still there, and the first event it is given carries
`gap=True`: it may have missed events and should reload whatever state it derives from the
feed. The same flag follows an outage of the hub's reader when the stream was trimmed past it.

Each process has one `ActivityHub` for all its subscribers. One background task per hub reads
new entries with XREAD BLOCK on a connection of its own and copies each event into the bounded
queue of every subscriber it is meant for, so 200 open streams cost one Redis connection, not
200. A subscriber that resumes from an id first reads the entries after it with XRANGE in
pages, then the live ones; it joins the fan-out before it reads that backlog and drops live
events it already had, so nothing is skipped or repeated at the seam. Ids are compared as
(milliseconds, sequence) pairs: as strings `999-0` would sort after `1000-0`.

A subscriber that does not keep up is cut off when its queue is full (`SlowConsumer`, carrying
the id to resume after) rather than holding up the others or buffering without bound: resuming
reads the backlog from Redis, which costs this process nothing while the client is slow. The
queue size is thus the burst a subscriber absorbs: the reader takes at most that many entries
per XREAD, and a subscriber that has not drained the previous ones by then is behind.

When Redis fails, the reader logs, backs off (0.5 s doubling to 5 s) and carries on from the
last id it saw; subscribers just wait. Only what a subscriber asks Redis itself, the start of
the feed and the backlog, fails with `ActivityUnavailable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Final

from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from services.core.errors import Aborted, Unavailable, clip
from services.core.logging import get_logger

log = get_logger(__name__)

DEFAULT_STREAM: Final = "bw:activity"
DEFAULT_MAXLEN: Final = 10_000
READER_CLIENT_NAME: Final = "bw-activity-reader"
"""The name the hub's reader connection carries in CLIENT LIST."""

EVENTS_PUBLISHED = Counter(
    "activity_events_published_total", "Activity events written to the feed", ["type"]
)

_ID = re.compile(r"([0-9]{1,20})-([0-9]{1,20})")
_MAX_PART = 2**64 - 1
_ZERO: Final = (0, 0)
_MAX_BLOCK_MS = 5_000
_BACKOFF_MIN_SECONDS = 0.5
_BACKOFF_MAX_SECONDS = 5.0

StreamKey = tuple[int, int]
"""A stream id as (milliseconds, sequence): the order Redis gives its entries."""


def parse_event_id(value: str) -> StreamKey:
    """The (milliseconds, sequence) of an event id such as `1733580000000-0`; ValueError with a
    message fit for the client when `value` is anything else."""
    match = _ID.fullmatch(value)
    if match is not None:
        ms, seq = int(match[1]), int(match[2])
        if ms <= _MAX_PART and seq <= _MAX_PART:
            return ms, seq
    raise ValueError(
        f"{clip(value)!r} is not an activity event id "
        "(expected <milliseconds>-<sequence>, e.g. 1733580000000-0)"
    )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _key(entry_id: bytes | str) -> StreamKey:
    ms, _, seq = _text(entry_id).partition("-")
    return int(ms), int(seq)


class ActivityUnavailable(Unavailable):
    """Redis could not be read to start a subscription or fetch its backlog, or the hub is
    closed; the client may retry with the same `after`."""

    reason = "ACTIVITY_UNAVAILABLE"


class SlowConsumer(Aborted):
    """The subscriber fell `queue_size` events behind and was cut off; the client should
    reconnect with `after=last_id`, which loses nothing (within the stream's retention)."""

    reason = "SLOW_CONSUMER"

    def __init__(self, last_id: str) -> None:
        super().__init__(
            f"the activity feed was read too slowly; resume after {last_id}", reason=self.reason
        )
        self.last_id = last_id


@dataclass(frozen=True)
class ActivityEvent:
    """One event of the feed."""

    id: str
    """The stream entry id (`1733580000000-0`): the event's position and its resume token."""
    type: str
    """What happened, e.g. `MISSION_PUBLISHED`."""
    audience: str
    """`""` for an event anyone may see, else the id of the one human who may see it."""
    data: dict[str, Any]
    """The event's JSON payload (one object shared by every subscriber: do not change it)."""
    occurred_at: datetime
    """When it was written (UTC, from the milliseconds of the id)."""
    gap: bool = False
    """True on the first event a subscriber gets after events it should have seen were trimmed
    from the stream (it resumed after an id older than the stream holds, or the hub's reader
    was away for that long): it may have missed some."""


def _decode(entry_id: bytes | str, fields: Mapping[Any, Any]) -> ActivityEvent | None:
    """The event of a stream entry; None (logged) for an entry this module did not write."""
    event_id = _text(entry_id)
    try:
        values = {_text(k): _text(v) for k, v in fields.items()}
        data = json.loads(values["data"])
        if not isinstance(data, dict):
            raise ValueError("data is not a JSON object")
        ms, _ = _key(event_id)
        return ActivityEvent(
            id=event_id,
            type=values["type"],
            audience=values.get("audience", ""),
            data=data,
            occurred_at=datetime.fromtimestamp(ms / 1000, UTC),
        )
    except (KeyError, ValueError, UnicodeDecodeError):
        log.warning("activity_entry_malformed", id=event_id)
        return None


def _entries(reply: Any) -> list[tuple[Any, Any]]:
    """The entries of an XREAD of one stream, in any of the shapes redis-py returns (RESP2
    list, RESP3 dict, with or without the legacy extra nesting)."""
    if not reply:
        return []
    entries = next(iter(reply.values())) if isinstance(reply, dict) else reply[0][1]
    if entries and isinstance(entries[0], list):
        entries = entries[0]
    return list(entries or [])


def _trimmed_past(info: Mapping[str, Any] | None, cursor: StreamKey) -> bool:
    """Whether entries after `cursor` may have been trimmed away, judged from the XINFO STREAM
    reply `info` (None: there is no such stream)."""
    if info is None:
        # Ids come from the stream, so a stream that is gone took them with it.
        return cursor > _ZERO
    added, length = info.get("entries-added"), info.get("length", 0)
    if added is not None and added <= length:
        return False  # nothing was ever trimmed or deleted
    first = info.get("first-entry")
    if first:
        return cursor < _key(first[0])
    last = info.get("last-generated-id")
    return last is not None and cursor < _key(last)


def _is_missing_stream(error: BaseException) -> bool:
    return isinstance(error, ResponseError) and "no such key" in str(error).lower()


async def publish(
    redis: Redis,
    type: str,
    data: Mapping[str, Any],
    *,
    audience: str = "",
    stream: str = DEFAULT_STREAM,
    maxlen: int = DEFAULT_MAXLEN,
) -> str | None:
    """Appends an event to the feed and returns its id.

    `audience` is `""` for a public event, else the id of the one human who may see it. Call it
    after the operation the event reports committed: it never raises for Redis (or for `data`
    that is not JSON) but logs and returns None, since a missed feed entry must not turn a done
    operation into a failed request.
    """
    try:
        payload = json.dumps(dict(data), separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        log.error("activity_event_not_serialisable", type=type)
        return None
    try:
        entry_id = await redis.xadd(
            stream,
            {"type": type, "audience": audience, "data": payload},
            maxlen=maxlen,
            approximate=True,
        )
    except (RedisError, OSError) as exc:
        log.warning("activity_publish_failed", type=type, error=str(exc))
        return None
    EVENTS_PUBLISHED.labels(type).inc()
    return _text(entry_id)


class ActivityHub:
    """The feed's subscriptions in one process, served by one Redis reader.

    `redis` is the process's shared client; the reader takes one connection of its pool for
    itself (`redis.client()`) while anybody is subscribed. Its XREAD blocks for `block_ms`, by
    default half the client's socket timeout (at most 5 s), so that an idle feed does not look
    like a dead connection. Create it in the process's event loop; `close()` it on shutdown.
    """

    BACKLOG_PAGE = 500
    """Entries per XRANGE while a resumed subscription catches up."""

    def __init__(
        self,
        redis: Redis,
        *,
        stream: str = DEFAULT_STREAM,
        queue_size: int = 256,
        block_ms: int | None = None,
    ) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        socket_timeout = redis.connection_pool.connection_kwargs.get("socket_timeout")
        timeout_ms = None if socket_timeout is None else int(socket_timeout * 1000)
        if block_ms is None:
            block_ms = _MAX_BLOCK_MS if timeout_ms is None else min(_MAX_BLOCK_MS, timeout_ms // 2)
        # BLOCK 0 waits forever, and a block as long as the socket timeout makes every quiet
        # spell a read timeout and a reconnection.
        if block_ms < 1 or (timeout_ms is not None and block_ms >= timeout_ms):
            raise ValueError(
                f"block_ms must be between 1 and the client's socket timeout ({timeout_ms} ms)"
            )
        self._redis = redis
        self._stream = stream
        self._queue_size = queue_size
        self._block_ms = block_ms
        self._subscriptions: set[Subscription] = set()
        self._reader: _Reader | None = None
        self._retiring: set[asyncio.Task[None]] = set()
        self._starting: asyncio.Task[StreamKey] | None = None
        # The id of the last entry the reader has fanned out: every subscription registered
        # now gets each event after it.
        self._position: StreamKey = _ZERO
        self._closed = False

    @property
    def stream(self) -> str:
        """The stream key this hub reads."""
        return self._stream

    def subscribe(self, *, after: str | None, types: frozenset[str], viewer: str) -> Subscription:
        """The events after the id `after` (exclusive), stored ones first, then live ones; only
        events published from now on when `after` is None.

        `types` keeps only those event types (empty: all). `viewer` is the id of the human
        reading (`""`: anonymous); events with an audience go to that human only. A malformed
        `after` raises ValueError here. Use the result as `async with hub.subscribe(...) as
        events: async for event in events`, which registers on entry (so events published
        after it are not missed) and unregisters on exit.
        """
        cursor = None if after is None else parse_event_id(after)
        return Subscription(self, cursor=cursor, types=frozenset(types), viewer=viewer)

    async def close(self) -> None:
        """Stops the reader; open subscriptions end with ActivityUnavailable."""
        self._closed = True
        for subscription in tuple(self._subscriptions):
            subscription._end(closed=True)
        self._subscriptions.clear()
        self._stop_reader()
        if not self._retiring:
            return
        # A reader ends within one XREAD block; one stuck beyond that (a dead connection
        # inside its socket timeout) is cancelled.
        socket_timeout = self._redis.connection_pool.connection_kwargs.get("socket_timeout")
        grace = self._block_ms / 1000 + (socket_timeout or 0) + 1
        _, stuck = await asyncio.wait(set(self._retiring), timeout=grace)
        for task in stuck:
            task.cancel()
        if stuck:
            # Bounded too: the cancellation itself may be lost (see _stop_reader).
            _, lost = await asyncio.wait(stuck, timeout=1.0)
            if lost:
                log.warning("activity_reader_not_stopped", stream=self._stream)

    async def _register(self, subscription: Subscription) -> StreamKey:
        """Adds `subscription` to the fan-out, starting the reader if it is the first one, and
        returns the position from which it gets live events."""
        if self._closed:
            raise ActivityUnavailable("the activity feed is shutting down")
        if self._reader is None:
            # Concurrent first subscribers share one look-up of where the stream ends.
            if self._starting is None or self._starting.done():
                self._starting = asyncio.create_task(self._stream_end())
                self._starting.add_done_callback(_retrieve_exception)
            try:
                end = await asyncio.shield(self._starting)
            except (RedisError, OSError) as exc:
                log.warning("activity_unavailable", stream=self._stream, error=str(exc))
                raise ActivityUnavailable("the activity feed is unavailable") from exc
            if self._closed:
                raise ActivityUnavailable("the activity feed is shutting down")
            if self._reader is None:
                self._position = end
                self._reader = _Reader()
                self._reader.task = asyncio.create_task(
                    self._read(self._reader), name=f"activity-reader:{self._stream}"
                )
        self._subscriptions.add(subscription)
        return self._position

    def _unregister(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)
        if not self._subscriptions:
            self._stop_reader()

    def _stop_reader(self) -> None:
        """Asks the reader to stop. Not by cancelling it: redis-py can lose a cancellation
        that lands while a reply is arriving (redis/redis-py#2028), leaving the task reading
        forever. The reader sees the flag when its XREAD returns, which CLIENT UNBLOCK makes
        at once (or the block timeout, if the reader was not blocked yet)."""
        reader, self._reader = self._reader, None
        if reader is None:
            return
        reader.stopping.set()
        self._retire(reader.task)
        if reader.client_id is not None:
            self._retire(asyncio.create_task(self._unblock(reader.client_id)))

    def _retire(self, task: asyncio.Task[None] | None) -> None:
        if task is not None and not task.done():
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)

    async def _unblock(self, client_id: int) -> None:
        # Cannot unblock somebody else: the reader closes its connection rather than return
        # it to the pool open, and Redis never reuses a client id. On failure the block
        # timeout ends the XREAD anyway.
        with contextlib.suppress(RedisError, OSError):
            await self._redis.client_unblock(client_id)

    async def _stream_end(self) -> StreamKey:
        last = await self._redis.xrevrange(self._stream, count=1)
        entry_id = last[0][0] if last else None
        return _ZERO if entry_id is None else _key(entry_id)

    async def _read_page(
        self, cursor: StreamKey
    ) -> tuple[list[tuple[StreamKey, ActivityEvent | None]], bool]:
        """The next backlog page after `cursor`, and whether entries after `cursor` were
        trimmed before it was read."""
        if cursor == (_MAX_PART, _MAX_PART):
            return [], False  # nothing can follow, and Redis rejects "(" on this id
        try:
            # One transaction, so that the trim check sees the stream the page came from.
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.xrange(self._stream, min=f"({cursor[0]}-{cursor[1]}", count=self.BACKLOG_PAGE)
                pipe.xinfo_stream(self._stream)
                page, info = await pipe.execute(raise_on_error=False)
            if isinstance(page, BaseException):
                raise page
            if isinstance(info, BaseException):
                if not _is_missing_stream(info):
                    raise info
                info = None
        except (RedisError, OSError) as exc:
            log.warning("activity_backlog_unavailable", stream=self._stream, error=str(exc))
            raise ActivityUnavailable("the activity feed is unavailable") from exc
        entries = [(_key(entry_id), _decode(entry_id, fields)) for entry_id, fields in page]
        return entries, _trimmed_past(info, cursor)

    async def _read(self, reader: _Reader) -> None:
        """The reader: XREAD BLOCK from the last id seen, fanning out, until `reader` is
        stopped."""
        client = self._redis.client()
        failures = 0
        try:
            while not reader.stopping.is_set():
                before = self._position
                try:
                    if reader.client_id is None:
                        # A new connection (the first, or one after a failure): named for
                        # CLIENT LIST, and its id known to CLIENT UNBLOCK.
                        await client.client_setname(READER_CLIENT_NAME)
                        reader.client_id = int(await client.client_id())
                    reply = await client.xread(
                        {self._stream: f"{before[0]}-{before[1]}"},
                        # No more than a queue holds, so that one burst read at once does not cut
                        # off subscribers that were keeping up.
                        count=self._queue_size,
                        block=self._block_ms,
                    )
                    if failures and not reader.stopping.is_set():
                        info = await _stream_info(client, self._stream)
                        if _trimmed_past(info, before):
                            log.warning("activity_reader_gap", stream=self._stream)
                            for subscription in self._subscriptions:
                                subscription._gap = True
                except Exception as exc:  # the reader must outlive any failure
                    if reader.stopping.is_set():
                        break
                    failures += 1
                    reader.client_id = None
                    delay = min(_BACKOFF_MIN_SECONDS * 2 ** (failures - 1), _BACKOFF_MAX_SECONDS)
                    log.warning(
                        "activity_reader_failed",
                        stream=self._stream,
                        error=str(exc) or type(exc).__name__,
                        retry_in_seconds=delay,
                    )
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(reader.stopping.wait(), delay)
                    continue
                if reader.stopping.is_set():
                    break  # a newer reader may own the position by now
                if failures:
                    log.info("activity_reader_recovered", stream=self._stream)
                    failures = 0
                for entry_id, fields in _entries(reply):
                    self._position = _key(entry_id)
                    event = _decode(entry_id, fields)
                    if event is not None:
                        self._fan_out(event)
        finally:
            # The connection goes back to the shared pool closed: not with our name on it, nor
            # with its id still known to a pending CLIENT UNBLOCK.
            if client.connection is not None:
                await client.connection.disconnect()
            await client.aclose()

    def _fan_out(self, event: ActivityEvent) -> None:
        for subscription in tuple(self._subscriptions):
            if subscription._wants(event) and not subscription._offer(event):
                log.info("activity_slow_consumer", stream=self._stream)
                self._unregister(subscription)


class _Reader:
    """One run of a hub's reader: a hub starts a new one when subscribers come back."""

    def __init__(self) -> None:
        self.stopping = asyncio.Event()
        self.client_id: int | None = None
        self.task: asyncio.Task[None] | None = None


async def _stream_info(client: Redis, stream: str) -> dict[str, Any] | None:
    try:
        info: dict[str, Any] = await client.xinfo_stream(stream)
    except ResponseError as exc:
        if _is_missing_stream(exc):
            return None
        raise
    return info


def _retrieve_exception(task: asyncio.Task[Any]) -> None:
    # A start look-up whose waiters were all cancelled must not log "never retrieved".
    if not task.cancelled():
        task.exception()


class Subscription(AsyncIterator[ActivityEvent]):
    """One subscriber's view of the feed (from `ActivityHub.subscribe`): an async iterator of
    events that ends with SlowConsumer when it falls behind and ActivityUnavailable when the
    hub closes or the backlog cannot be read. Iterating registers it if `async with` did not;
    `aclose()` (or leaving the `async with`) unregisters it. A cancelled `__anext__` (a timeout
    around it) loses nothing: the next call carries on."""

    def __init__(
        self,
        hub: ActivityHub,
        *,
        cursor: StreamKey | None,
        types: frozenset[str],
        viewer: str,
    ) -> None:
        self._hub = hub
        self._types = types
        self._viewer = viewer
        self._queue: asyncio.Queue[ActivityEvent | None] = asyncio.Queue(hub._queue_size)
        # Everything up to here was delivered or is not for this subscriber: the backlog
        # cursor, the threshold for live duplicates and the id a SlowConsumer resumes after.
        self._position: StreamKey = cursor or _ZERO
        self._backlog: deque[tuple[StreamKey, ActivityEvent | None]] | None = (
            None if cursor is None else deque()
        )
        self._backlog_done = False
        self._gap = False
        self._registered = False
        self._closed = False
        self._ended: str | None = None  # "slow" or "closed" once the hub let go of it

    @property
    def last_id(self) -> str:
        """The id to resume after: everything up to it was delivered or was not for us."""
        return f"{self._position[0]}-{self._position[1]}"

    async def __aenter__(self) -> Subscription:
        await self._open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> ActivityEvent:
        if self._closed:
            raise StopAsyncIteration
        await self._open()
        while True:
            if self._ended is not None:
                self.close()
                if self._ended == "slow":
                    raise SlowConsumer(self.last_id)
                raise ActivityUnavailable("the activity feed is shutting down")
            if self._backlog is not None:
                if self._backlog:
                    key, event = self._backlog.popleft()
                    self._position = key
                    if event is not None and self._wants(event):
                        return self._deliver(event)
                elif self._backlog_done:
                    self._backlog = None
                else:
                    try:
                        await self._fetch_page()
                    except ActivityUnavailable:
                        self.close()
                        raise
                continue
            item = await self._queue.get()
            if item is None:
                continue  # the hub let go of us: _ended says why
            key = _key(item.id)
            if key <= self._position:
                continue  # already delivered from the backlog
            self._position = key
            return self._deliver(item)

    async def aclose(self) -> None:
        """Unregisters from the hub; iterating afterwards ends at once."""
        self.close()

    def close(self) -> None:
        """`aclose()` for callers that cannot await (a cancelled handler's cleanup)."""
        self._closed = True
        if self._registered:
            self._registered = False
            self._hub._unregister(self)

    async def _open(self) -> None:
        if self._registered or self._closed or self._ended is not None:
            return
        start = await self._hub._register(self)
        self._registered = True
        if self._backlog is None:
            self._position = start

    async def _fetch_page(self) -> None:
        # All state changes after the await, so a cancelled call can simply be repeated.
        entries, gap = await self._hub._read_page(self._position)
        if gap:
            self._gap = True
        if len(entries) < self._hub.BACKLOG_PAGE:
            self._backlog_done = True
        assert self._backlog is not None
        self._backlog.extend(entries)

    def _deliver(self, event: ActivityEvent) -> ActivityEvent:
        if self._gap:
            self._gap = False
            return replace(event, gap=True)
        return event

    def _wants(self, event: ActivityEvent) -> bool:
        if self._types and event.type not in self._types:
            return False
        return not event.audience or event.audience == self._viewer

    def _offer(self, event: ActivityEvent) -> bool:
        """Queues a live event; False (and cut off) when the queue is full."""
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self._end(closed=False)
            return False
        return True

    def _end(self, *, closed: bool) -> None:
        """The hub lets go of this subscription: its queue is emptied (the events are in the
        stream) and a waiting reader woken to raise."""
        self._ended = "closed" if closed else "slow"
        self._registered = False
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(None)
