"""Problems in PostgreSQL."""

from __future__ import annotations

import functools
from dataclasses import asdict
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import bindparam, func, select, text, update
from sqlalchemy.sql import Select
from sqlalchemy.sql.dml import ReturningInsert

from services.content.commands import NewProblem, ProblemChanges, ProblemQuery
from services.content.model import APPROVED, PENDING, ProblemRecord, Similar
from services.content.sql import rows
from services.content.sql.base import (
    after_key,
    back_to_moderation,
    record_columns,
    uuid_of,
)
from services.content.tables import APPROVED_ONLY, problems
from services.core.db import Connector

_SORTS = {
    "recent": [problems.c.created_at, problems.c.id],
    "upvotes": [problems.c.upvotes, problems.c.created_at, problems.c.id],
    "solutions": [problems.c.solution_count, problems.c.created_at, problems.c.id],
}

# The statements of the hot paths are built once and take their values as parameters:
# composing one per call (coercing every value, deriving its cache key) cost more client CPU
# than executing it (bench/README.md, "Measurements behind the code").
_INSERT: ReturningInsert[Any] = problems.insert().returning(*record_columns(problems))
_BY_ID = select(*record_columns(problems)).where(problems.c.id == bindparam("id"))
_BY_ID_LOCKED = _BY_ID.with_for_update()


class SqlProblems:
    """ProblemStore over the `problems` table."""

    def __init__(self, connector: Connector) -> None:
        self._db = connector

    async def insert(
        self,
        new: NewProblem,
        *,
        author_id: str,
        evaluation_id: str,
        title_vector: list[float],
        title_model: str,
    ) -> ProblemRecord:
        values = {
            **{name: value for name, value in asdict(new).items()},
            "data_sources": [asdict(source) for source in new.data_sources],
            "evidence_links": list(new.evidence_links),
            "existing_solutions": list(new.existing_solutions),
            "self_audit": asdict(new.self_audit) if new.self_audit else None,
            "author_agent_id": UUID(author_id),
            "guardrail_status": PENDING,
            "guardrail_evaluation_id": UUID(evaluation_id),
            "title_embedding": title_vector,
            "title_embedding_model": title_model,
        }
        async with self._db.connect() as conn:  # one INSERT: atomic by itself
            return rows.problem((await conn.execute(_INSERT, values)).one())

    async def get(self, problem_id: str, *, lock: bool = False) -> ProblemRecord | None:
        parsed = uuid_of(problem_id)
        if parsed is None:
            return None
        async with self._db.connect() as conn:
            row = (await conn.execute(_BY_ID_LOCKED if lock else _BY_ID, {"id": parsed})).first()
        return rows.problem(row) if row else None

    async def resubmit(
        self,
        problem_id: str,
        changes: ProblemChanges,
        *,
        evaluation_id: str,
        title_vector: tuple[list[float], str] | None,
    ) -> ProblemRecord:
        values = {**changes.sent(), **back_to_moderation(evaluation_id)}
        if changes.changes_text:
            values.update(embedding=None, embedding_model=None)  # the worker embeds the new text
        if title_vector is not None:
            values.update(title_embedding=title_vector[0], title_embedding_model=title_vector[1])
        return await self._change(problem_id, values)

    async def archive(self, problem_id: str) -> ProblemRecord:
        return await self._change(problem_id, {"status": "ARCHIVED"})

    async def _change(self, problem_id: str, values: dict[str, Any]) -> ProblemRecord:
        statement = (
            update(problems)
            .where(problems.c.id == UUID(problem_id))
            .values(**values, updated_at=func.now())
            .returning(*record_columns(problems))
        )
        async with self._db.connect() as conn:
            return rows.problem((await conn.execute(statement)).one())

    async def count_solutions(self, problem_id: str, delta: int) -> None:
        async with self._db.connect() as conn:
            await conn.execute(
                update(problems)
                .where(problems.c.id == UUID(problem_id))
                .values(solution_count=problems.c.solution_count + delta)
            )

    async def page(
        self, query: ProblemQuery, *, author_id: str | None, after: list[Any] | None, count: int
    ) -> list[ProblemRecord]:
        statement = select(*record_columns(problems)).where(problems.c.status == query.status)
        if author_id is not None:
            statement = statement.where(problems.c.author_agent_id == UUID(author_id))
            if query.guardrail_status:
                statement = statement.where(problems.c.guardrail_status == query.guardrail_status)
        else:
            statement = statement.where(problems.c.guardrail_status == APPROVED)
        if query.domain:
            statement = statement.where(problems.c.domain == query.domain)
        if query.severity:
            statement = statement.where(problems.c.severity == query.severity)
        columns = _SORTS[query.sort]
        decoded = None
        if after is not None:
            decoded = [*after[:-2], datetime.fromisoformat(after[-2]), UUID(after[-1])]
        statement = after_key(statement, columns, decoded)
        statement = statement.order_by(*(c.desc() for c in columns)).limit(count)
        async with self._db.connect() as conn:
            return [rows.problem(row) for row in (await conn.execute(statement)).all()]

    async def similar(
        self, vector: list[float], *, exclude: str | None, limit: int, by_title: bool = False
    ) -> list[Similar]:
        statement, params = similar_query(vector, uuid_of(exclude), limit, by_title)
        async with self._db.connect() as conn:
            found = (await conn.execute(statement, params)).all()
        return [
            Similar(str(r.id), r.title, r.domain, round(1 - float(r.distance), 4)) for r in found
        ]

    async def reported_since(self, since: datetime) -> int:
        """Problems reported at or after `since`, whatever their guardrail outcome."""
        statement = select(func.count()).select_from(problems).where(problems.c.created_at >= since)
        async with self._db.connect() as conn:
            return int((await conn.execute(statement)).scalar_one())

    async def search_vector(self, problem_id: str) -> list[float] | None:
        parsed = uuid_of(problem_id)
        if parsed is None:
            return None
        async with self._db.connect() as conn:
            query = select(problems.c.embedding).where(problems.c.id == parsed)
            vector = (await conn.execute(query)).scalar_one_or_none()
        return None if vector is None else [float(x) for x in vector]


def similar_query(
    vector: list[float], exclude: UUID | None, limit: int, by_title: bool
) -> tuple[Select[Any], dict[str, Any]]:
    """The nearest-problems query and its parameters (exposed so tests can check its plan)."""
    params: dict[str, Any] = {"vector": vector, "limit": limit}
    if exclude is not None:
        params["exclude"] = exclude
    return _similar_statement(by_title, exclude is not None), params


@functools.cache
def _similar_statement(by_title: bool, excluding: bool) -> Select[Any]:
    column = problems.c.title_embedding if by_title else problems.c.embedding
    distance = column.cosine_distance(bindparam("vector", type_=column.type))
    query = (
        select(problems.c.id, problems.c.title, problems.c.domain, distance.label("distance"))
        .where(text(APPROVED_ONLY))  # a literal: the partial HNSW index's predicate
        .where(problems.c.status == "ACTIVE")
        .where(column.is_not(None))
        .order_by(distance)
        .limit(bindparam("limit"))
    )
    return query.where(problems.c.id != bindparam("exclude")) if excluding else query
