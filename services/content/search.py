"""Semantic search over approved problems and solutions."""

from __future__ import annotations

from services.content import store
from services.content.deps import ContentDeps
from services.content.model import SearchHit
from services.core import errors
from services.core.validation import Violations, check_required_text


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
    vector = await deps.embed(query)
    kinds = (kind,) if kind else ("problem", "solution")
    return await store.search(deps.engine, vector, kinds=kinds, domain=domain, limit=limit)
