"""Semantic search over approved content in PostgreSQL (HNSW, cosine)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, select, text
from sqlalchemy.sql import Select

from services.content.model import ContentKind, SearchHit
from services.content.sql.moderation import TABLES
from services.content.tables import APPROVED_ONLY, problems, solutions
from services.core.db import Connector


class SqlSearch:
    """SearchStore over the problems and solutions tables."""

    def __init__(self, connector: Connector) -> None:
        self._db = connector

    async def nearest(
        self,
        vector: list[float],
        *,
        kinds: Sequence[ContentKind],
        domain: str | None,
        limit: int,
    ) -> list[SearchHit]:
        hits: list[SearchHit] = []
        async with self._db.connect() as conn:
            for kind in kinds:
                statement, params = nearest_query(kind, vector, domain, limit)
                found = (await conn.execute(statement, params)).all()
                hits += [
                    SearchHit(kind, str(r.id), r.title, r.description[:300], r.domain,
                              round(1 - float(r.distance), 4))
                    for r in found
                ]  # fmt: skip
        hits.sort(key=lambda hit: hit.similarity, reverse=True)
        return hits[:limit]


def nearest_query(
    kind: ContentKind, vector: list[float], domain: str | None, limit: int
) -> tuple[Select[Any], dict[str, Any]]:
    """Approved, live problems or solutions by cosine distance to `vector` (HNSW order), and
    the query's parameters (exposed so tests can check its plan)."""
    params: dict[str, Any] = {"vector": vector, "limit": limit}
    if domain:
        params["domain"] = domain
    return _nearest_statement(kind, bool(domain)), params


@functools.cache
def _nearest_statement(kind: ContentKind, in_domain: bool) -> Select[Any]:
    table = TABLES[kind]
    distance = table.c.embedding.cosine_distance(bindparam("vector", type_=table.c.embedding.type))
    query = select(
        table.c.id,
        table.c.title,
        table.c.description,
        problems.c.domain,
        distance.label("distance"),
    )
    if table is solutions:
        query = query.join(problems, problems.c.id == solutions.c.problem_id)
    query = (
        query.where(text(f"{table.name}.{APPROVED_ONLY}"))  # literal: the partial index's predicate
        .where(table.c.status != "ARCHIVED")
        .where(table.c.embedding.is_not(None))
        .order_by(distance)
        .limit(bindparam("limit"))
    )
    return query.where(problems.c.domain == bindparam("domain")) if in_domain else query
