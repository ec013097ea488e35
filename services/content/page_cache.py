"""A short-lived, in-process cache of public list pages.

The first page of each domain's problems is by far the most requested read and the same for
every caller, so a process serves it from memory for LIST_CACHE_SECONDS (1 s by default)
instead of querying and converting 20 rows per request. Concurrent misses of one page share a
single query. Only pages that are the same for everyone are cached (never `mine`); a write
this process applies that can change a public page (a decision, an edit, an archive, a debate)
empties the cache, so a caller sees its own changes at once when one process serves it; other
processes' pages are at most LIST_CACHE_SECONDS old when their reload starts.

A page past its TTL is still served, for at most LIST_CACHE_STALE_SECONDS more (10 s by
default), while a single reload runs in the background: callers never wait for a reload of a
page they could have had a moment ago (with the reload on the request path, every expiry made
the requests of that page wait for a query; they were the slowest 1-2 % of all, and after a
pause of a few seconds every page of a burst of traffic was waited for at once). Only the
callers that come before the reload ends get the older page. Past that window, or after an
invalidation, callers wait for the fresh page.

Each page lives between 75 % and 100 % of the TTL, at random. Pages loaded together (at
start, after an invalidation) would otherwise expire together every TTL, and their reloads
(query, rendering, JSON: a few ms of CPU each) would hold the event loop for tens of
milliseconds at once.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Hashable

from prometheus_client import Counter

from services.core.logging import get_logger
from services.core.pagination import Page

log = get_logger(__name__)

LIST_CACHE = Counter(
    "content_list_cache_total",
    "Public list pages served from memory (hit; stale: while it reloads) or loaded (miss)",
    ["result"],
)
_HITS = LIST_CACHE.labels("hit")
_STALE = LIST_CACHE.labels("stale")
_MISSES = LIST_CACHE.labels("miss")
# The share of the TTL by which a page's life is shortened at random (see the module doc).
_SPREAD = 0.25


class PageCache:
    """Pages by query key for `ttl_seconds` (0 turns caching off), at most `max_entries`;
    served while they reload for `stale_seconds` more (by default, one more TTL)."""

    def __init__(
        self, *, ttl_seconds: float, max_entries: int, stale_seconds: float | None = None
    ) -> None:
        self._ttl = ttl_seconds
        self._stale = ttl_seconds if stale_seconds is None else stale_seconds
        self._max = max_entries
        self._pages: dict[Hashable, tuple[float, Page]] = {}
        self._loading: dict[Hashable, asyncio.Future[Page]] = {}
        self._refreshing: set[asyncio.Task[Page]] = set()
        # Bumped by every invalidation: a load that started before one must not store a page
        # read before the write.
        self._generation = 0

    async def get(self, key: Hashable, load: Callable[[], Awaitable[Page]]) -> Page:
        """The cached page for `key`, or the one `load` returns (shared by concurrent callers)."""
        if self._ttl <= 0:
            return await load()
        now = time.monotonic()
        cached = self._pages.get(key)
        if cached is not None:
            expires, page = cached
            if expires > now:
                _HITS.inc()
                return page
            if expires + self._stale > now:
                _STALE.inc()
                if key not in self._loading:
                    self._refresh(key, load)
                return page
        _MISSES.inc()
        pending = self._loading.get(key)
        if pending is not None:
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                if not pending.cancelled():
                    raise  # this caller was cancelled
                return await load()  # the loading caller was: load without it
        return await self._load(key, load, self._claim(key))

    def invalidate(self) -> None:
        """Forgets every page (after a write that may change public pages)."""
        self._generation += 1
        self._pages.clear()

    def _claim(self, key: Hashable) -> asyncio.Future[Page]:
        """Marks `key` as loading (at once, so that callers arriving before the load starts
        share it); the future is what they wait on."""
        future: asyncio.Future[Page] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        return future

    async def _load(
        self, key: Hashable, load: Callable[[], Awaitable[Page]], future: asyncio.Future[Page]
    ) -> Page:
        """Runs `load` as the one load of `key` that concurrent callers share, and keeps its
        page unless an invalidation came in between."""
        generation = self._generation
        started = time.monotonic()
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
            spread = 1 - _SPREAD * random.random()  # noqa: S311 (not a secret)
            self._store(key, page, started, started + self._ttl * spread)
        return page

    def _refresh(self, key: Hashable, load: Callable[[], Awaitable[Page]]) -> None:
        future = self._claim(key)
        task = asyncio.get_running_loop().create_task(self._load(key, load, future))
        self._refreshing.add(task)  # the loop keeps only a weak reference
        task.add_done_callback(self._refreshed)

    def _refreshed(self, task: asyncio.Task[Page]) -> None:
        self._refreshing.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # The stale page stays until its stale window ends; the next caller tries again.
            log.warning("list_page_reload_failed", error=type(task.exception()).__name__)

    def _store(self, key: Hashable, page: Page, now: float, expires: float) -> None:
        self._pages.pop(key, None)
        # Insertion order is nearly age order: pages past their stale window (no longer served
        # even while reloading), and past the limit the oldest live ones, are at the front.
        # Dropping them here keeps memory to what is live (a page that expired behind a
        # longer-lived one goes when it reaches the front).
        while self._pages:
            oldest = next(iter(self._pages))
            if self._pages[oldest][0] + self._stale > now and len(self._pages) < self._max:
                break
            del self._pages[oldest]
        self._pages[key] = (expires, page)

    def __len__(self) -> int:
        """Pages held (live or not yet dropped)."""
        return len(self._pages)
