"""The activity feed against a real Valkey: delivery, filters, resume without gaps or
duplicates, retention gaps, slow consumers, one reader for many subscribers, Redis failures."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from services.core.activity import (
    READER_CLIENT_NAME,
    ActivityEvent,
    ActivityHub,
    ActivityUnavailable,
    SlowConsumer,
    Subscription,
    parse_event_id,
    publish,
)
from tooling.devstack import EmbeddedValkey

ALL: frozenset[str] = frozenset()


@pytest.fixture
async def redis(valkey: EmbeddedValkey) -> AsyncIterator[Redis]:
    # Timeouts as services.core.redis sets them (a little looser for a busy test machine).
    client = Redis.from_url(
        valkey.url, socket_timeout=1.0, socket_connect_timeout=1.0, health_check_interval=15
    )
    yield client
    await client.aclose()


@pytest.fixture
def stream() -> str:
    return f"test:activity:{uuid.uuid4()}"


@pytest.fixture
async def hub(redis: Redis, stream: str) -> AsyncIterator[ActivityHub]:
    activity = ActivityHub(redis, stream=stream)
    yield activity
    await activity.close()


async def _next(events: Subscription, timeout: float = 2.0) -> ActivityEvent:
    return await asyncio.wait_for(anext(events), timeout)


async def _take(events: Subscription, count: int, timeout: float = 2.0) -> list[ActivityEvent]:
    return [await _next(events, timeout) for _ in range(count)]


async def _publish(
    redis: Redis, stream: str, type: str = "T", audience: str = "", **data: object
) -> str:
    entry_id = await publish(redis, type, data, audience=audience, stream=stream)
    assert entry_id is not None
    return entry_id


async def _reader_clients(redis: Redis) -> list[dict[str, str]]:
    return [c for c in await redis.client_list() if c.get("name") == READER_CLIENT_NAME]


def _published(type: str) -> float:
    return REGISTRY.get_sample_value("activity_events_published_total", {"type": type}) or 0.0


async def _until(redis: Redis, *, readers: int, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while len(await _reader_clients(redis)) != readers:
        assert time.monotonic() < deadline, f"never {readers} reader connection(s)"
        await asyncio.sleep(0.02)


async def test_a_live_subscriber_receives_a_published_event_within_a_second(
    redis: Redis, stream: str, hub: ActivityHub
) -> None:
    published_before = _published("MISSION_PUBLISHED")
    async with hub.subscribe(after=None, types=ALL, viewer="") as events:
        began = time.monotonic()
        entry_id = await publish(
            redis, "MISSION_PUBLISHED", {"mission": "m1", "n": 3}, stream=stream
        )
        event = await _next(events, timeout=1.0)
        assert time.monotonic() - began < 1.0
    assert event.id == entry_id
    assert (event.type, event.audience, event.data, event.gap) == (
        "MISSION_PUBLISHED",
        "",
        {"mission": "m1", "n": 3},
        False,
    )
    ms, _ = parse_event_id(event.id)
    assert event.occurred_at == datetime.fromtimestamp(ms / 1000, UTC)
    assert abs((datetime.now(UTC) - event.occurred_at).total_seconds()) < 5
    assert _published("MISSION_PUBLISHED") == published_before + 1


async def test_only_events_published_after_subscribing_are_live(
    redis: Redis, stream: str, hub: ActivityHub
) -> None:
    await _publish(redis, stream, n=1)
    async with hub.subscribe(after=None, types=ALL, viewer="") as events:
        later = await _publish(redis, stream, n=2)
        assert (await _next(events)).id == later


async def test_a_type_filter_keeps_only_those_types(
    redis: Redis, stream: str, hub: ActivityHub
) -> None:
    async with hub.subscribe(after=None, types=frozenset({"A", "C"}), viewer="") as events:
        for type in ("B", "A", "B", "C", "B", "A"):
            await _publish(redis, stream, type)
        assert [e.type for e in await _take(events, 3)] == ["A", "C", "A"]
        last = await _publish(redis, stream, "A")
        assert (await _next(events)).id == last  # nothing else was queued


async def test_private_events_reach_only_their_human(
    redis: Redis, stream: str, hub: ActivityHub
) -> None:
    async with (
        hub.subscribe(after=None, types=ALL, viewer="") as anonymous,
        hub.subscribe(after=None, types=ALL, viewer="alice") as alice,
        hub.subscribe(after=None, types=ALL, viewer="bob") as bob,
    ):
        first = await _publish(redis, stream, "P", n=1)
        for_alice = await _publish(redis, stream, "X", audience="alice")
        for_bob = await _publish(redis, stream, "X", audience="bob")
        last = await _publish(redis, stream, "P", n=2)
        assert [e.id for e in await _take(anonymous, 2)] == [first, last]
        assert [e.id for e in await _take(alice, 3)] == [first, for_alice, last]
        assert [e.id for e in await _take(bob, 3)] == [first, for_bob, last]

    # The backlog is filtered the same way.
    before = f"{parse_event_id(first)[0] - 1}-0"
    async with hub.subscribe(after=before, types=ALL, viewer="") as anonymous:
        assert [e.id for e in await _take(anonymous, 2)] == [first, last]
    async with hub.subscribe(after=before, types=ALL, viewer="alice") as alice:
        received = await _take(alice, 3)
        assert [e.id for e in received] == [first, for_alice, last]
        assert received[1].audience == "alice"


@pytest.mark.parametrize("pause", [0.0, 0.002])
async def test_resuming_gets_exactly_the_missed_events_then_live_ones(
    redis: Redis, stream: str, hub: ActivityHub, pause: float
) -> None:
    hub.BACKLOG_PAGE = 7  # several pages, each a chance for a seam
    stored = [await _publish(redis, stream, n=i) for i in range(30)]
    live: list[str] = []

    async def keep_publishing() -> None:
        for i in range(100):
            live.append(await _publish(redis, stream, n=100 + i))
            await asyncio.sleep(pause)

    publisher = asyncio.create_task(keep_publishing())
    async with hub.subscribe(after=stored[9], types=ALL, viewer="") as events:
        received = await _take(events, 20 + 100)
        await publisher
        final = await _publish(redis, stream, n=999)
        received.append(await _next(events))

    ids = [e.id for e in received]
    assert ids == [*stored[10:], *live, final]
    assert not any(e.gap for e in received)
    keys = [parse_event_id(i) for i in ids]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)


async def test_ids_are_ordered_as_numbers_not_strings(
    redis: Redis, stream: str, hub: ActivityHub
) -> None:
    fields = {"type": "T", "audience": "", "data": "{}"}
    await redis.xadd(stream, fields, id="999-0")
    async with hub.subscribe(after="999-0", types=ALL, viewer="") as events:
        await redis.xadd(stream, fields, id="1000-0")  # "1000-0" < "999-0" as strings
        event = await _next(events)
    assert event.id == "1000-0"
    assert event.occurred_at == datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)
    async with hub.subscribe(after="999-0", types=ALL, viewer="") as events:
        assert (await _next(events)).id == "1000-0"  # from the backlog this time


async def test_resuming_after_an_id_older_than_the_stream_holds_flags_a_gap(
    redis: Redis, stream: str, hub: ActivityHub
) -> None:
    ids = [await publish(redis, "T", {"n": i}, stream=stream, maxlen=10) for i in range(400)]
    oldest = (await redis.xrange(stream, count=1))[0][0].decode()
    assert parse_event_id(oldest) > parse_event_id(ids[0] or "")  # trimmed
    async with hub.subscribe(after=ids[0], types=ALL, viewer="") as events:
        first, second = await _take(events, 2)
    assert (first.id, first.gap) == (oldest, True)
    assert second.gap is False

    # Within the retention, and from the start of a stream never trimmed: no gap.
    async with hub.subscribe(after=ids[-3], types=ALL, viewer="") as events:
        assert [(e.id, e.gap) for e in await _take(events, 2)] == [
            (ids[-2], False),
            (ids[-1], False),
        ]
    fresh = ActivityHub(redis, stream=f"{stream}:fresh")
    try:
        first_fresh = await publish(redis, "T", {}, stream=f"{stream}:fresh")
        async with fresh.subscribe(after="0-0", types=ALL, viewer="") as events:
            event = await _next(events)
            assert (event.id, event.gap) == (first_fresh, False)
    finally:
        await fresh.close()


@pytest.mark.parametrize(
    "after",
    [
        "",
        "abc",
        "1",
        "1-",
        "-1",
        "1-2-3",
        " 1-0",
        "1-0 ",
        "1.5-0",
        "-1-0",
        "\uff11-0",  # a fullwidth digit one
        "1" * 21 + "-0",
        f"{2**64}-0",
    ],
)
def test_a_malformed_after_is_refused(hub: ActivityHub, after: str) -> None:
    with pytest.raises(ValueError, match="is not an activity event id"):
        hub.subscribe(after=after, types=ALL, viewer="")


async def test_a_slow_consumer_is_cut_off_while_a_fast_one_gets_everything(
    redis: Redis, stream: str
) -> None:
    hub = ActivityHub(redis, stream=stream, queue_size=16)
    try:
        async with (
            hub.subscribe(after=None, types=ALL, viewer="") as slow,
            hub.subscribe(after=None, types=ALL, viewer="") as fast,
        ):
            start = slow.last_id
            fast_received = asyncio.create_task(_take(fast, 60))
            published = []
            for i in range(60):
                published.append(await _publish(redis, stream, n=i))
                await asyncio.sleep(0.001)
            assert [e.id for e in await fast_received] == published
            with pytest.raises(SlowConsumer) as cut:
                await _next(slow)
            assert cut.value.last_id == start  # it had been given nothing
            with pytest.raises(StopAsyncIteration):
                await _next(slow)
            # Its resume token loses nothing; the fast one is still served.
            async with hub.subscribe(after=cut.value.last_id, types=ALL, viewer="") as resumed:
                assert [e.id for e in await _take(resumed, 60)] == published
            last = await _publish(redis, stream, n=60)
            assert (await _next(fast)).id == last
    finally:
        await hub.close()


async def test_a_slow_consumer_resumes_after_what_it_was_given(redis: Redis, stream: str) -> None:
    hub = ActivityHub(redis, stream=stream, queue_size=4)
    try:
        async with hub.subscribe(after=None, types=ALL, viewer="") as events:
            published = [await _publish(redis, stream, n=0)]
            assert (await _next(events)).id == published[0]
            for i in range(1, 10):
                published.append(await _publish(redis, stream, n=i))
            await asyncio.sleep(0.3)
            with pytest.raises(SlowConsumer) as cut:
                await _next(events)
        assert cut.value.last_id == published[0]
    finally:
        await hub.close()


async def test_two_hundred_subscribers_share_one_reader(
    redis: Redis, stream: str, hub: ActivityHub
) -> None:
    clients_before = len(await redis.client_list())
    async with AsyncExitStack() as stack:
        subscriptions = [hub.subscribe(after=None, types=ALL, viewer="") for _ in range(200)]
        await asyncio.gather(*(stack.enter_async_context(s) for s in subscriptions))
        entry_id = await _publish(redis, stream)
        received = await asyncio.gather(*(_next(s) for s in subscriptions))
        assert {e.id for e in received} == {entry_id}
        assert len(received) == 200
        clients = await redis.client_list()
        assert len(clients) - clients_before <= 3  # the reader, perhaps a pooled connection
        readers = await _reader_clients(redis)
        assert len(readers) == 1
        assert readers[0]["cmd"] == "xread"


async def test_the_reader_stops_with_the_last_subscriber_and_on_close(
    redis: Redis, stream: str, hub: ActivityHub
) -> None:
    async with hub.subscribe(after=None, types=ALL, viewer=""):
        await _until(redis, readers=1)
    await _until(redis, readers=0)

    events = hub.subscribe(after=None, types=ALL, viewer="")
    waiting = asyncio.create_task(_next(events))
    await asyncio.sleep(0.1)
    await hub.close()
    with pytest.raises(ActivityUnavailable):
        await waiting
    assert await _reader_clients(redis) == []
    with pytest.raises(ActivityUnavailable):
        await hub.subscribe(after=None, types=ALL, viewer="").__aenter__()


async def test_publishing_with_redis_down_returns_none() -> None:
    unreachable = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    try:
        assert await publish(unreachable, "T", {"n": 1}, stream="test:activity:down") is None
    finally:
        await unreachable.aclose()


async def test_data_that_is_not_json_is_not_published(redis: Redis, stream: str) -> None:
    assert await publish(redis, "T", {"when": object()}, stream=stream) is None
    assert await redis.exists(stream) == 0


async def test_subscribing_with_redis_down_is_unavailable() -> None:
    unreachable = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    hub = ActivityHub(unreachable, stream="test:activity:down")
    try:
        for after in (None, "1-0"):
            with pytest.raises(ActivityUnavailable):
                async with hub.subscribe(after=after, types=ALL, viewer=""):
                    pass
    finally:
        await hub.close()
        await unreachable.aclose()


async def test_an_entry_this_module_did_not_write_is_skipped(
    redis: Redis, stream: str, hub: ActivityHub
) -> None:
    async with hub.subscribe(after=None, types=ALL, viewer="") as events:
        await redis.xadd(stream, {"something": "else"})
        await redis.xadd(stream, {"type": "T", "audience": "", "data": "[1]"})
        entry_id = await _publish(redis, stream)
        assert (await _next(events)).id == entry_id


async def test_the_reader_survives_its_connection_being_killed(
    redis: Redis, stream: str, hub: ActivityHub
) -> None:
    async with hub.subscribe(after=None, types=ALL, viewer="") as events:
        for round in range(2):
            before = await _publish(redis, stream, n=round)
            assert (await _next(events)).id == before
            (reader,) = await _reader_clients(redis)
            assert await redis.client_kill_filter(_id=reader["id"]) == 1
            during = await _publish(redis, stream, n=round, during=True)  # while it reconnects
            assert (await _next(events, timeout=5.0)).id == during
            # It named its new connection again.
            (renamed,) = await _reader_clients(redis)
            assert renamed["id"] != reader["id"]


async def test_a_reader_outage_longer_than_the_retention_flags_a_gap(
    redis: Redis, stream: str, hub: ActivityHub
) -> None:
    async with hub.subscribe(after=None, types=ALL, viewer="") as events:
        first = await _publish(redis, stream, n=0)
        assert (await _next(events)).id == first
        (reader,) = await _reader_clients(redis)
        await redis.client_kill_filter(_id=reader["id"])
        # While the reader backs off (0.5 s), the stream moves on past what it had read.
        for i in range(300):
            await publish(redis, "T", {"n": i}, stream=stream, maxlen=10)
        oldest = (await redis.xrange(stream, count=1))[0][0].decode()
        resumed = await _next(events, timeout=5.0)
        following = await _next(events)
    assert (resumed.id, resumed.gap) == (oldest, True)
    assert following.gap is False


async def test_a_backlog_that_cannot_be_read_is_unavailable(
    redis: Redis, stream: str, hub: ActivityHub
) -> None:
    first = await _publish(redis, stream)
    async with hub.subscribe(after=first, types=ALL, viewer="") as events:
        await redis.delete(stream)
        await redis.set(stream, "not a stream")  # XRANGE now fails with WRONGTYPE
        with pytest.raises(ActivityUnavailable):
            await _next(events)
        with pytest.raises(StopAsyncIteration):
            await _next(events)


async def test_a_timeout_around_next_loses_nothing(
    redis: Redis, stream: str, hub: ActivityHub
) -> None:
    async with hub.subscribe(after=None, types=ALL, viewer="") as events:
        with pytest.raises(TimeoutError):
            await _next(events, timeout=0.1)
        entry_id = await _publish(redis, stream)
        assert (await _next(events)).id == entry_id
