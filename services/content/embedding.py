"""Search embeddings of problems and solutions, computed by the worker, never inside a request.

A create or edit stores the item without a search vector; the worker embeds it after the
guardrail evaluation (`embed_item`). `backfill` embeds whatever is missing or was embedded by
another model, search vectors and problem titles alike: the worker's sweep runs it in small
rounds, and `betterworld embeddings backfill` runs it to completion after EMBEDDING_PROVIDER or
the local model changes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Protocol, TypeVar

from prometheus_client import Counter

from services.content.deps import ContentDeps, embed_texts
from services.content.model import SEARCHABLE, ContentKind, EmbeddingSource, TitleSource
from services.core.logging import get_logger

log = get_logger(__name__)
EMBEDDINGS_STORED = Counter(
    "content_embeddings_stored_total",
    "Vectors stored (kind problem_title: the title vectors of the duplicate check)",
    ["kind", "source"],
)


def embedding_text(title: str, description: str) -> str:
    """What a problem's or solution's search vector encodes."""
    return f"{title}\n{description}"


async def embed_item(deps: ContentDeps, kind: str, content_id: str, evaluation_id: str) -> bool:
    """Embeds the item's text as of `evaluation_id`; false when it has changed since (the newer
    evaluation embeds it), is rejected, or already has a vector from the current model."""
    if kind not in SEARCHABLE:
        return False
    found = await deps.store.embeddings.sources(
        ContentKind(kind), model=deps.embedder.model_id, content_id=content_id
    )
    if not found or found[0].evaluation_id != evaluation_id:
        return False
    return await _store(deps, ContentKind(kind), found, source="evaluation") == 1


class _Source(Protocol):
    @property
    def id(self) -> str: ...


Source = TypeVar("Source", bound=_Source)


async def backfill(
    deps: ContentDeps,
    *,
    unchanged_for: timedelta = timedelta(0),
    batch_size: int = 32,
    limit: int | None = None,
) -> int:
    """Embeds items with no search vector, or one from another model, that have not changed
    for `unchanged_for` (younger ones are the evaluation's to embed), then problem titles whose
    vector is from another model than the local one; at most `limit` vectors in all.

    Returns how many vectors were stored. Each batch commits on its own, so an interrupted run
    resumes where it stopped.
    """
    before = datetime.now(UTC) - unchanged_for
    stored = 0

    async def drain(
        fetch: Callable[[str | None, int], Awaitable[list[Source]]],
        save: Callable[[list[Source]], Awaitable[int]],
    ) -> None:
        nonlocal stored
        after: str | None = None
        while limit is None or stored < limit:
            size = batch_size if limit is None else min(batch_size, limit - stored)
            rows = await fetch(after, size)
            if not rows:
                return
            after = rows[-1].id
            stored += await save(rows)

    for kind in SEARCHABLE:
        await drain(
            partial(_search_sources, deps, kind, before),
            partial(_store, deps, kind, source="backfill"),
        )
    await drain(partial(_title_sources, deps, before), partial(_store_titles, deps))
    if stored:
        log.info("embeddings_backfilled", count=stored, model=deps.embedder.model_id)
    return stored


async def _search_sources(
    deps: ContentDeps, kind: ContentKind, before: datetime, after: str | None, size: int
) -> list[EmbeddingSource]:
    return await deps.store.embeddings.sources(
        kind,
        model=deps.embedder.model_id,
        after=after,
        changed_before=before,
        limit=size,
    )


async def _title_sources(
    deps: ContentDeps, before: datetime, after: str | None, size: int
) -> list[TitleSource]:
    return await deps.store.embeddings.title_sources(
        model=deps.titles.model_id, after=after, changed_before=before, limit=size
    )


async def _store(
    deps: ContentDeps, kind: ContentKind, sources: Sequence[EmbeddingSource], *, source: str
) -> int:
    texts = [embedding_text(item.title, item.description) for item in sources]
    vectors = await embed_texts(deps.embedder, texts, executor=deps.item_executor)
    stored = 0
    model = deps.embedder.model_id
    for item, vector in zip(sources, vectors, strict=True):
        if await deps.store.embeddings.store(kind, item, vector, model):
            stored += 1
    EMBEDDINGS_STORED.labels(kind.value, source).inc(stored)
    return stored


async def _store_titles(deps: ContentDeps, sources: Sequence[TitleSource]) -> int:
    titles = [item.title for item in sources]
    vectors = await embed_texts(deps.titles, titles, executor=deps.item_executor)
    stored = 0
    for item, vector in zip(sources, vectors, strict=True):
        if await deps.store.embeddings.store_title(item, vector, deps.titles.model_id):
            stored += 1
    EMBEDDINGS_STORED.labels("problem_title", "backfill").inc(stored)
    return stored
