"""What the content domain functions need, built once by the service's composition root."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol

import numpy as np
from redis.asyncio import Redis

from services.content.page_cache import PageCache
from services.content.queue import EmbeddingQueue
from services.content.store import ContentStore
from services.core.embeddings import EmbeddingProvider
from services.core.embeddings.provider import embed_queries
from services.core.pagination import CursorCodec
from services.core.queues import EvaluationJob


async def embed_texts(
    provider: EmbeddingProvider,
    texts: Sequence[str],
    *,
    queries: bool = False,
    executor: Executor | None = None,
) -> list[list[float]]:
    """Embeddings computed off the event loop (the local model takes milliseconds of CPU, a
    hosted one a network round trip) on `executor` (None: the loop's default thread pool);
    `queries` embeds search queries rather than documents."""
    embed = partial(embed_queries, provider) if queries else provider.embed
    loop = asyncio.get_running_loop()
    vectors = await loop.run_in_executor(executor, embed, list(texts))
    return [row.tolist() for row in np.asarray(vectors, dtype=np.float32)]


class EvaluationSink(Protocol):
    """Where new text goes to be evaluated (the guardrail's queue)."""

    async def enqueue(self, job: EvaluationJob) -> bool:
        """Queues the job; False when the queue is unreachable."""
        ...


@dataclass(frozen=True)
class ContentDeps:
    """Clients of the content domain."""

    store: ContentStore
    cursors: CursorCodec
    queue: EvaluationSink
    embeddings: EmbeddingQueue | None
    """Where decided items' search vectors are queued for the worker (None: not queued)."""
    embedder: EmbeddingProvider
    """The configured provider (EMBEDDING_PROVIDER): search vectors of items and queries."""
    titles: EmbeddingProvider
    """Always the local model: problem titles for the duplicate check inside the create."""
    pages: PageCache = field(default_factory=lambda: PageCache(ttl_seconds=0, max_entries=1))
    """Public list pages served from memory (LIST_CACHE_SECONDS; off unless configured)."""
    item_executor: Executor | None = None
    """Where items' search vectors are computed. None (the services): the default thread pool.
    The worker passes an idle-priority pool, so bulk embedding only takes spare CPU."""
    activity: Redis | None = None
    """Where approvals are announced to the activity feed (None: not announced)."""

    async def embed_query(self, text: str) -> list[float]:
        """A search query's vector in the search space."""
        return (await embed_texts(self.embedder, [text], queries=True))[0]

    async def embed_title(self, title: str) -> list[float]:
        """One vector in the title space (a short text: a few milliseconds)."""
        return (await embed_texts(self.titles, [title]))[0]
