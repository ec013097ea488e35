"""The GCRA script against real Valkey: atomic under concurrency, refills over time."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from services.core.ratelimit import RateLimiter
from tooling.devstack import EmbeddedValkey


@pytest.fixture
async def redis(valkey: EmbeddedValkey) -> AsyncIterator[Redis]:
    client = Redis.from_url(valkey.url)
    yield client
    await client.aclose()


async def test_concurrent_hits_never_exceed_the_limit(redis: Redis) -> None:
    limiter = RateLimiter(redis)
    bucket = f"test:{uuid.uuid4()}"
    decisions = await asyncio.gather(*(limiter.hit(bucket, limit=20) for _ in range(60)))
    allowed = [d for d in decisions if d is not None and d.allowed]
    assert len(allowed) == 20
    assert sorted(d.remaining for d in allowed) == list(range(20))
    denied = [d for d in decisions if d is not None and not d.allowed]
    assert all(0 < d.retry_after_seconds <= 3.01 for d in denied)


async def test_tokens_come_back_at_the_emission_rate(redis: Redis) -> None:
    limiter = RateLimiter(redis)
    bucket = f"test:{uuid.uuid4()}"
    for _ in range(5):
        assert (await limiter.hit(bucket, limit=5, period_seconds=1.0)).allowed  # type: ignore[union-attr]
    assert not (await limiter.hit(bucket, limit=5, period_seconds=1.0)).allowed  # type: ignore[union-attr]
    await asyncio.sleep(0.25)  # one token per 0.2 s
    assert (await limiter.hit(bucket, limit=5, period_seconds=1.0)).allowed  # type: ignore[union-attr]


async def test_disabled_or_unreachable_limiter_lets_requests_through() -> None:
    unreachable = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    assert await RateLimiter(unreachable).hit("x", limit=1) is None
    assert await RateLimiter(unreachable, enabled=False).hit("x", limit=1) is None
    assert await RateLimiter(unreachable, batch_seconds=0.05).hit("x", limit=1000) is None
    await unreachable.aclose()


@pytest.mark.parametrize("limit", [7, 10, 60, 300, 10_000, 100_000])
async def test_a_fresh_bucket_reports_limit_minus_one_remaining(redis: Redis, limit: int) -> None:
    decision = await RateLimiter(redis).hit(f"test:{uuid.uuid4()}", limit=limit)
    assert decision is not None and decision.remaining == limit - 1


async def test_a_request_refused_by_one_bucket_costs_nothing_from_the_others(redis: Redis) -> None:
    limiter = RateLimiter(redis)
    general, creations = f"test:{uuid.uuid4()}", f"test:{uuid.uuid4()}"
    first = await limiter.hit_all([(general, 10), (creations, 1)])
    assert first is not None and [d.allowed for d in first] == [True, True]
    assert first[0].remaining == 9
    refused = await limiter.hit_all([(general, 10), (creations, 1)])
    assert refused is not None and [d.allowed for d in refused] == [True, False]
    after = await limiter.hit(general, limit=10)
    assert after is not None and after.remaining == 8  # the refused request took nothing


async def _evalsha_calls(redis: Redis) -> int:
    stats = await redis.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


# An hour-long period: one request every 3.6 s at a limit of 1,000, so nothing refills in a test.
_HOUR = 3600.0


async def test_batched_limiter_answers_a_client_with_headroom_itself(redis: Redis) -> None:
    limiter = RateLimiter(redis, batch_seconds=0.05)
    bucket = f"test:{uuid.uuid4()}"
    await RateLimiter(redis).hit(f"test:{uuid.uuid4()}", limit=1)  # loads the script
    calls = await _evalsha_calls(redis)
    decisions = [await limiter.hit(bucket, limit=1000, period_seconds=_HOUR) for _ in range(40)]
    assert all(d is not None and d.allowed for d in decisions)
    assert [d.remaining for d in decisions] == list(range(999, 959, -1))  # type: ignore[union-attr]
    assert await _evalsha_calls(redis) - calls == 1  # the first request asked; the rest did not
    await asyncio.sleep(0.2)  # the process charges what it served
    assert await _evalsha_calls(redis) - calls == 2
    check = await RateLimiter(redis).hit(bucket, limit=1000, period_seconds=_HOUR)
    assert check is not None and check.remaining == 1000 - 41
    await limiter.close()


async def test_batched_limiter_refuses_exactly_at_the_limit(redis: Redis) -> None:
    limiter = RateLimiter(redis, batch_seconds=0.05)
    bucket = f"test:{uuid.uuid4()}"
    decisions = [await limiter.hit(bucket, limit=40, period_seconds=_HOUR) for _ in range(50)]
    assert [d.allowed for d in decisions] == [True] * 40 + [False] * 10  # type: ignore[union-attr]
    assert [d.remaining for d in decisions[:40]] == list(range(39, -1, -1))  # type: ignore[union-attr]
    await limiter.close()


async def test_two_batched_processes_exceed_a_limit_by_at_most_a_twentieth_each(
    redis: Redis,
) -> None:
    first, second = RateLimiter(redis, batch_seconds=0.05), RateLimiter(redis, batch_seconds=0.05)
    bucket = f"test:{uuid.uuid4()}"
    allowed = 0
    for _ in range(150):
        for limiter in (first, second):
            decision = await limiter.hit(bucket, limit=200, period_seconds=_HOUR)
            assert decision is not None
            allowed += decision.allowed
    assert 200 <= allowed <= 200 + 2 * 10
    await first.close()
    await second.close()


async def test_what_a_process_served_is_charged_when_it_closes(redis: Redis) -> None:
    limiter = RateLimiter(redis, batch_seconds=10.0)
    bucket = f"test:{uuid.uuid4()}"
    for _ in range(11):
        assert (await limiter.hit(bucket, limit=1000, period_seconds=_HOUR)).allowed  # type: ignore[union-attr]
    await limiter.close()
    check = await RateLimiter(redis).hit(bucket, limit=1000, period_seconds=_HOUR)
    assert check is not None and check.remaining == 1000 - 12
