"""Semantic search over approved problems and solutions."""

from __future__ import annotations

from services.content.commands import SearchQuery
from services.content.deps import ContentDeps
from services.content.model import SEARCHABLE, SearchHit
from services.content.validation import valid_search
from services.core import errors
from services.core.embeddings.provider import EmbeddingError
from services.core.logging import get_logger

log = get_logger(__name__)


async def search_content(deps: ContentDeps, query: SearchQuery) -> list[SearchHit]:
    """Best matches first, with cosine similarity; `kind` narrows to problems or solutions."""
    query = valid_search(query)
    try:
        vector = await deps.embed_query(query.text)
    except EmbeddingError:  # a hosted provider down or out of quota; the error says which
        log.warning("search_embedding_failed", provider=deps.embedder.model_id)
        raise errors.Unavailable(
            "search is unavailable: the embedding model did not answer", reason="EMBEDDING_FAILED"
        ) from None
    kinds = [k for k in SEARCHABLE if query.kind is None or k == query.kind]
    return await deps.store.search.nearest(
        vector, kinds=kinds, domain=query.domain, limit=query.limit
    )
