"""Search and title vectors of content in PostgreSQL."""

from __future__ import annotations

import functools
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, or_, select, update
from sqlalchemy.sql import Select

from services.content.model import ContentKind, EmbeddingSource, TitleSource
from services.content.sql.base import uuid_of
from services.content.sql.moderation import TABLES
from services.content.tables import problems
from services.core.db import Connector


class SqlEmbeddings:
    """EmbeddingStore over the problems and solutions tables."""

    def __init__(self, connector: Connector) -> None:
        self._db = connector

    async def sources(
        self,
        kind: ContentKind,
        *,
        model: str,
        content_id: str | None = None,
        after: str | None = None,
        changed_before: datetime | None = None,
        limit: int = 1,
    ) -> list[EmbeddingSource]:
        """Rejected items are never shown, so they are never embedded."""
        table = TABLES[kind]
        query = (
            select(table.c.id, table.c.title, table.c.description, table.c.guardrail_evaluation_id)
            .where(table.c.guardrail_status != "REJECTED")
            .where(
                or_(table.c.embedding.is_(None), table.c.embedding_model.is_distinct_from(model))
            )
            .order_by(table.c.id)
            .limit(limit)
        )
        if content_id is not None:
            query = query.where(table.c.id == uuid_of(content_id))
        found = await self._after(query, table, after, changed_before)
        return [
            EmbeddingSource(str(r.id), r.title, r.description, str(r.guardrail_evaluation_id))
            for r in found
        ]

    async def store(
        self, kind: ContentKind, source: EmbeddingSource, vector: list[float], model: str
    ) -> bool:
        params = {
            "e_id": uuid.UUID(source.id),
            "e_evaluation": uuid.UUID(source.evaluation_id),
            "e_vector": vector,
            "e_model": model,
        }
        async with self._db.connect() as conn:  # one UPDATE: atomic by itself
            result = await conn.execute(_set_embedding_statement(kind), params)
        return bool(result.rowcount)

    async def title_sources(
        self,
        *,
        model: str,
        after: str | None = None,
        changed_before: datetime | None = None,
        limit: int = 1,
    ) -> list[TitleSource]:
        query = (
            select(problems.c.id, problems.c.title)
            .where(problems.c.title_embedding_model.is_distinct_from(model))
            .order_by(problems.c.id)
            .limit(limit)
        )
        found = await self._after(query, problems, after, changed_before)
        return [TitleSource(str(r.id), r.title) for r in found]

    async def store_title(self, source: TitleSource, vector: list[float], model: str) -> bool:
        async with self._db.connect() as conn:
            result = await conn.execute(
                update(problems)
                .where(problems.c.id == uuid.UUID(source.id))
                .where(problems.c.title == source.title)
                .values(title_embedding=vector, title_embedding_model=model)
            )
        return bool(result.rowcount)

    async def _after(
        self,
        query: Select[Any],
        table: Table,
        after: str | None,
        changed_before: datetime | None,
    ) -> list[Any]:
        """The rows of a backfill's query past `after` (by id), unchanged since
        `changed_before`."""
        if after is not None:
            query = query.where(table.c.id > uuid.UUID(after))
        if changed_before is not None:
            query = query.where(table.c.updated_at < changed_before)
        async with self._db.connect() as conn:
            return list((await conn.execute(query)).all())


@functools.cache
def _set_embedding_statement(kind: ContentKind) -> Any:
    # Built once (the worker stores one per item); parameter names differ from column names,
    # as an UPDATE requires. A vector is stored only for the text it was computed from: an
    # edit since started a new evaluation.
    table = TABLES[kind]
    return (
        update(table)
        .where(table.c.id == bindparam("e_id"))
        .where(table.c.guardrail_evaluation_id == bindparam("e_evaluation"))
        .values(
            embedding=bindparam("e_vector", type_=table.c.embedding.type),
            embedding_model=bindparam("e_model"),
        )
    )
