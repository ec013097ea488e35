"""A short-lived, in-process cache of public list pages.

The first page of each domain's problems is by far the most requested read and the same for
every caller, so a process serves it from memory for LIST_CACHE_SECONDS (1 s by default)
instead of querying and converting 20 rows per request. Concurrent misses of one page share a
single query. Only pages that are the same for everyone are cached (never `mine`); a write
this process applies that can change a public page (a decision, an edit, an archive, a debate)
empties the cache, so a caller sees its own changes at once when one process serves it; other
processes' pages are at most LIST_CACHE_SECONDS old.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable

from prometheus_client import Counter

from services.content.model import Page

LIST_CACHE = Counter(
    "content_list_cache_total", "Public list pages served from memory or loaded", ["result"]
)
_HITS = LIST_CACHE.labels("hit")
_MISSES = LIST_CACHE.labels("miss")


class PageCache:
    """Pages by query key for `ttl_seconds` (0 turns caching off), at most `max_entries`."""

    def __init__(self, *, ttl_seconds: float, max_entries: int) -> None:
        self._ttl = ttl_seconds
        self._max = max_entries
        self._pages: dict[Hashable, tuple[float, Page]] = {}
        self._loading: dict[Hashable, asyncio.Future[Page]] = {}
        # Bumped by every invalidation: a load that started before one must not store a page
        # read before the write.
        self._generation = 0

    async def get(self, key: Hashable, load: Callable[[], Awaitable[Page]]) -> Page:
        """The cached page for `key`, or the one `load` returns (shared by concurrent callers)."""
        if self._ttl <= 0:
            return await load()
        now = time.monotonic()
        cached = self._pages.get(key)
        if cached is not None and cached[0] > now:
            _HITS.inc()
            return cached[1]
        _MISSES.inc()
        pending = self._loading.get(key)
        if pending is not None:
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                if not pending.cancelled():
                    raise  # this caller was cancelled
                return await load()  # the loading caller was: load without it
        future: asyncio.Future[Page] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        generation = self._generation
        try:
            page = await load()
        except BaseException as exc:
            # Waiting callers get the same error; a cancelled loader lets them retry instead.
            if isinstance(exc, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(exc)
                future.exception()  # retrieved here, so an unawaited one is not logged
            raise
        finally:
            if self._loading.get(key) is future:
                del self._loading[key]
        future.set_result(page)
        if generation == self._generation:
            self._store(key, page, now + self._ttl)
        return page

    def invalidate(self) -> None:
        """Forgets every page (after a write that may change public pages)."""
        self._generation += 1
        self._pages.clear()

    def _store(self, key: Hashable, page: Page, expires: float) -> None:
        self._pages.pop(key, None)
        # Insertion order is age order (one TTL for all): expired pages, and past the limit the
        # oldest live ones, are at the front. Dropping them here keeps memory to what is live.
        now = expires - self._ttl
        while self._pages:
            oldest = next(iter(self._pages))
            if self._pages[oldest][0] > now and len(self._pages) < self._max:
                break
            del self._pages[oldest]
        self._pages[key] = (expires, page)

    def __len__(self) -> int:
        """Pages held (live or not yet dropped)."""
        return len(self._pages)
