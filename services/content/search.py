"""Semantic search over approved problems and solutions."""

from __future__ import annotations

from services.content import store
from services.content.deps import ContentDeps
from services.content.model import SearchHit
from services.core import errors
from services.core.embeddings.provider import EmbeddingError
from services.core.logging import get_logger
from services.core.validation import Violations, check_required_text

log = get_logger(__name__)


async def search_content(
    deps: ContentDeps, *, query: str, kind: str | None, domain: str | None, limit: int
) -> list[SearchHit]:
    """Best matches first, with cosine similarity; `kind` narrows to problems or solutions."""
    out = Violations()
    check_required_text(query, out, "q", 2, 500)
    if kind not in (None, "problem", "solution"):
        out.add("kind", "must be PROBLEM or SOLUTION (debates are not searchable)")
    out.raise_if_any()
    if limit == 0:
        limit = 20
    if not 1 <= limit <= 100:
        raise errors.InvalidArgument.one("limit", "must be between 1 and 100")
    try:
        vector = await deps.embed_query(query)
    except EmbeddingError:  # a hosted provider down or out of quota; the error says which
        log.warning("search_embedding_failed", provider=deps.embedder.model_id)
        raise errors.Unavailable(
            "search is unavailable: the embedding model did not answer", reason="EMBEDDING_FAILED"
        ) from None
    kinds = (kind,) if kind else ("problem", "solution")
    return await store.search(deps.engine, vector, kinds=kinds, domain=domain, limit=limit)
