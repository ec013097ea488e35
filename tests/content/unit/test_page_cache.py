"""PageCache: one load per page however many callers, nothing stale after an invalidation."""

from __future__ import annotations

import asyncio

import pytest

from services.content.page_cache import PageCache
from services.core.pagination import Page


class Loader:
    """Counts loads; each returns a new page, after `delay` seconds."""

    def __init__(self, delay: float = 0.0, error: Exception | None = None) -> None:
        self.calls = 0
        self.delay = delay
        self.error = error

    async def __call__(self) -> Page:
        self.calls += 1
        await asyncio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        return Page(items=[self.calls], next_cursor="", has_more=False, limit=20)


async def test_a_page_is_loaded_once_until_it_expires() -> None:
    cache, load = PageCache(ttl_seconds=0.2, max_entries=10), Loader()
    first = await cache.get("k", load)
    assert await cache.get("k", load) is first
    assert await cache.get("other", load) is not first
    await asyncio.sleep(0.45)  # past its TTL and the second one it may be served stale
    assert (await cache.get("k", load)).items == [3]
    assert load.calls == 3


async def test_an_expired_page_is_served_while_one_reload_runs_in_the_background() -> None:
    # Timings with wide margins: a busy machine may oversleep by a good fraction of a second.
    cache, load = PageCache(ttl_seconds=1.0, max_entries=10), Loader()
    first = await cache.get("k", load)
    load.delay = 1.0  # the reload is slow
    await asyncio.sleep(1.05)  # expired (at 0.75-1.0 s), served stale until 1.75-2.0 s
    started = asyncio.get_running_loop().time()
    stale = await asyncio.gather(*(cache.get("k", load) for _ in range(10)))
    assert all(page is first for page in stale)  # nobody waited for the reload
    assert asyncio.get_running_loop().time() - started < 0.5
    await asyncio.sleep(0)
    assert load.calls == 2  # one reload for all of them
    await asyncio.sleep(1.1)
    assert (await cache.get("k", load)).items == [2]


async def test_a_failed_background_reload_keeps_the_stale_page_and_is_retried() -> None:
    cache, good = PageCache(ttl_seconds=1.0, max_entries=10), Loader()
    first = await cache.get("k", good)
    await asyncio.sleep(1.05)
    failing = Loader(error=ConnectionError("database down"))
    assert await cache.get("k", failing) is first  # the caller never sees the error
    await asyncio.sleep(0.01)
    assert failing.calls == 1
    assert await cache.get("k", good) is first  # still stale: the next caller reloads
    await asyncio.sleep(0.01)
    assert (await cache.get("k", good)).items == [2]


async def test_a_page_is_served_stale_for_the_window_it_is_given() -> None:
    # After a pause longer than the TTL, the first readers of a burst do not wait either.
    cache, load = PageCache(ttl_seconds=0.1, max_entries=10, stale_seconds=5), Loader()
    first = await cache.get("k", load)
    load.delay = 1.0  # the reload is slow
    await asyncio.sleep(0.5)
    started = asyncio.get_running_loop().time()
    assert await cache.get("k", load) is first
    assert asyncio.get_running_loop().time() - started < 0.5
    await asyncio.sleep(1.1)
    assert (await cache.get("k", load)).items == [2]


async def test_a_page_past_its_second_ttl_or_invalidated_is_waited_for() -> None:
    cache, load = PageCache(ttl_seconds=0.1, max_entries=10), Loader(delay=0.02)
    await cache.get("k", load)
    await asyncio.sleep(0.22)
    assert (await cache.get("k", load)).items == [2]
    cache.invalidate()
    assert (await cache.get("k", load)).items == [3]


async def test_concurrent_misses_share_one_load() -> None:
    cache, load = PageCache(ttl_seconds=5, max_entries=10), Loader(delay=0.05)
    pages = await asyncio.gather(*(cache.get("k", load) for _ in range(20)))
    assert load.calls == 1
    assert all(page is pages[0] for page in pages)


async def test_a_load_that_raced_an_invalidation_is_not_kept() -> None:
    cache, load = PageCache(ttl_seconds=5, max_entries=10), Loader(delay=0.05)
    racing = asyncio.create_task(cache.get("k", load))
    await asyncio.sleep(0.01)
    cache.invalidate()  # a write committed while the page was being read
    assert (await racing).items == [1]  # its caller still gets an answer
    assert (await cache.get("k", load)).items == [2]  # but nobody after the write does


async def test_errors_reach_every_waiting_caller_and_are_not_cached() -> None:
    cache = PageCache(ttl_seconds=5, max_entries=10)
    failing = Loader(delay=0.05, error=ConnectionError("database down"))
    results = await asyncio.gather(
        *(cache.get("k", failing) for _ in range(3)), return_exceptions=True
    )
    assert failing.calls == 1
    assert all(isinstance(r, ConnectionError) for r in results)
    assert (await cache.get("k", Loader())).items == [1]


async def test_waiters_load_themselves_when_the_loading_caller_is_cancelled() -> None:
    cache, load = PageCache(ttl_seconds=5, max_entries=10), Loader(delay=0.1)
    loading = asyncio.create_task(cache.get("k", load))
    await asyncio.sleep(0.01)
    waiting = asyncio.create_task(cache.get("k", load))
    await asyncio.sleep(0.01)
    loading.cancel()
    with pytest.raises(asyncio.CancelledError):
        await loading
    assert (await waiting).items == [2]


async def test_the_oldest_pages_go_first_past_the_limit() -> None:
    cache, load = PageCache(ttl_seconds=5, max_entries=2), Loader()
    for key in ("a", "b", "c"):
        await cache.get(key, load)
    await cache.get("b", load)
    await cache.get("c", load)
    assert load.calls == 3
    await cache.get("a", load)  # evicted
    assert load.calls == 4


async def test_expired_pages_do_not_stay_in_memory() -> None:
    cache, load = PageCache(ttl_seconds=0.05, max_entries=100), Loader()
    for key in range(10):
        await cache.get(key, load)
    assert len(cache) == 10
    await asyncio.sleep(0.11)
    await cache.get("new", load)
    assert len(cache) == 1


async def test_a_zero_ttl_turns_caching_off() -> None:
    cache, load = PageCache(ttl_seconds=0, max_entries=10), Loader()
    await cache.get("k", load)
    await cache.get("k", load)
    assert load.calls == 2


async def test_pages_loaded_together_expire_spread_over_the_last_quarter_of_the_ttl() -> None:
    ttl = 2.0
    cache, load = PageCache(ttl_seconds=ttl, max_entries=100), Loader()
    for key in range(40):
        await cache.get(key, load)
    await asyncio.sleep(ttl * 0.5)
    await asyncio.gather(*(cache.get(key, load) for key in range(40)))
    assert load.calls == 40  # all alive at half the TTL
    await asyncio.sleep(ttl * 0.375)  # 87.5 % of the TTL: about half of them expired
    await asyncio.gather(*(cache.get(key, load) for key in range(40)))
    await asyncio.sleep(0.01)  # their reloads run in the background
    assert 5 <= load.calls - 40 <= 35
    await asyncio.sleep(ttl * 0.25)  # past the TTL: every one was reloaded at least once
    await asyncio.gather(*(cache.get(key, load) for key in range(40)))
    await asyncio.sleep(0.01)
    assert load.calls >= 80
