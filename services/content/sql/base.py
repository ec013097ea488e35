"""What every content SQL store shares: where its statements run, and keyset conditions."""

from __future__ import annotations

import uuid
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any

from sqlalchemy import Table, and_, or_
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import Select

from services.content.model import PENDING
from services.core.db import autocommit

_NOT_IN_RECORDS = frozenset({"embedding", "title_embedding", "title_embedding_model"})


class Connector:
    """Where a store's statements run: its transaction's connection, or (outside one) a pooled
    connection in AUTOCOMMIT, where each statement commits on its own."""

    def __init__(self, engine: AsyncEngine, conn: AsyncConnection | None = None) -> None:
        self.engine = engine
        self.conn = conn

    def connect(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A connection for the statements of one call."""
        if self.conn is not None:
            return nullcontext(self.conn)
        return autocommit(self.engine)

    def atomic(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A connection for statements that must commit together: the transaction's, or a new
        one that commits when the block ends."""
        if self.conn is not None:
            return nullcontext(self.conn)
        return self.engine.begin()


def record_columns(table: Table) -> list[Any]:
    """Every column but the vectors and the title vector's model: records never need them, and
    decoding 384 floats per row was a large share of a list page's CPU."""
    return [column for column in table.c if column.name not in _NOT_IN_RECORDS]


def uuid_of(value: str | None) -> uuid.UUID | None:
    """The UUID in `value`, or None (a malformed id finds nothing)."""
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        return None


def after_key(query: Select[Any], columns: list[Any], after: list[Any] | None) -> Select[Any]:
    """Adds `(c1, c2, ...) < after` for a descending keyset ordering."""
    if after is None:
        return query
    clauses = []
    for i, column in enumerate(columns):
        equal = [columns[j] == after[j] for j in range(i)]
        clauses.append(and_(*equal, column < after[i]))
    return query.where(or_(*clauses))


def back_to_moderation(evaluation_id: str) -> dict[str, Any]:
    """Column values that put edited content back in the queue under a new evaluation."""
    return {
        "guardrail_status": PENDING,
        "guardrail_evaluation_id": uuid.UUID(evaluation_id),
        "guardrail_decided_at": None,
        "guardrail_explanation": "",
    }
