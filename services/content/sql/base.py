"""What every content SQL store shares: the columns of records, ids, keyset conditions."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Table, and_, or_
from sqlalchemy.sql import Select

from services.content.model import PENDING

_NOT_IN_RECORDS = frozenset({"embedding", "title_embedding", "title_embedding_model"})


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
