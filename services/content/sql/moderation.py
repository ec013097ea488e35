"""Guardrail decisions on content in PostgreSQL."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, and_, bindparam, func, or_, select, union_all, update
from sqlalchemy.engine import Row
from sqlalchemy.sql.dml import ReturningUpdate

from services.content.model import (
    APPROVED,
    PENDING,
    ContentKind,
    ContentRecord,
    Decision,
    Outcome,
)
from services.content.sql import rows
from services.content.sql.base import record_columns
from services.content.sql.problems import SqlProblems
from services.content.sql.solutions import SqlSolutions
from services.content.tables import debates, problems, solutions
from services.core.db import Connector

TABLES: dict[ContentKind, Table] = {
    ContentKind.PROBLEM: problems,
    ContentKind.SOLUTION: solutions,
    ContentKind.DEBATE: debates,
}
RECORDS: dict[ContentKind, Callable[[Row[Any]], ContentRecord]] = {
    ContentKind.PROBLEM: rows.problem,
    ContentKind.SOLUTION: rows.solution,
    ContentKind.DEBATE: rows.debate,
}
_SCORE_COLUMNS = ("impact_score", "feasibility_score", "cost_efficiency_score", "composite_score")


class SqlModeration:
    """ModerationStore over the three content tables."""

    def __init__(self, connector: Connector) -> None:
        self._db = connector

    async def apply(self, decision: Decision) -> Outcome:
        """One guarded UPDATE records it (a problem's decision is a single round trip): it
        applies only to the item's current evaluation, and only while undecided or FLAGGED. A
        CTE locks the row first so the UPDATE can return the status it replaces. Counters of
        the parent move in the same transaction, only when the item enters or leaves APPROVED,
        so concurrent decisions keep them exact."""
        assert decision.kind is not None  # validated by the domain
        kind = decision.kind
        scores = decision.scores if kind is ContentKind.SOLUTION else None
        # Parameter names must differ from column names in an UPDATE: hence the prefix.
        params: dict[str, Any] = {
            "d_content_id": uuid.UUID(decision.content_id),
            "d_evaluation_id": uuid.UUID(decision.evaluation_id),
            "d_status": decision.status,
            "d_alignment_score": decision.alignment_score,
            "d_aligned_domain": decision.aligned_domain,
            "d_explanation": decision.explanation,
        }
        if scores is not None:
            values = (scores.impact, scores.feasibility, scores.cost_efficiency, scores.composite)
            params.update(zip((f"d_{name}" for name in _SCORE_COLUMNS), values, strict=True))
        statement = _decision_statement(kind, scores is not None)
        if kind is ContentKind.PROBLEM:  # no parent counter: one statement, atomic by itself
            async with self._db.connect() as conn:
                row = (await conn.execute(statement, params)).first()
        else:
            async with self._db.atomic() as conn:
                row = (await conn.execute(statement, params)).first()
                if row is not None:
                    delta = int(decision.status == APPROVED) - int(row.was == APPROVED)
                    if delta:
                        inside = Connector(self._db.engine, conn)
                        if kind is ContentKind.SOLUTION:
                            await SqlProblems(inside).count_solutions(str(row.problem_id), delta)
                        else:
                            await SqlSolutions(inside).count_debates(str(row.solution_id), delta)
        if row is not None:
            return Outcome(applied=True, stale=False)
        # Not applied: a repeat of the current evaluation's decision, or one for an older one
        # (or for no item at all), which is stale.
        table = TABLES[kind]
        async with self._db.connect() as conn:
            current = (
                await conn.execute(
                    select(table.c.guardrail_evaluation_id).where(
                        table.c.id == params["d_content_id"]
                    )
                )
            ).scalar()
        return Outcome(applied=False, stale=current != params["d_evaluation_id"])

    async def pending_since(
        self, kind: ContentKind, before: datetime, *, limit: int
    ) -> Sequence[ContentRecord]:
        table = TABLES[kind]
        query = (
            select(*record_columns(table))
            .where(table.c.guardrail_status == PENDING)
            .where(table.c.updated_at < before)
            .order_by(table.c.updated_at)
            .limit(limit)
        )
        async with self._db.connect() as conn:
            return [RECORDS[kind](row) for row in (await conn.execute(query)).all()]

    async def approved_items(self, author_id: str, *, at_most: int) -> int:
        """The trust rule only asks whether there are that many. A full count read every
        approved row of a prolific author on every evaluation, most of the database's work
        under load; this stops after `at_most` rows."""
        if at_most <= 0:
            return 0
        params = {"author": uuid.UUID(author_id), "at_most": at_most}
        async with self._db.connect() as conn:
            count = (await conn.execute(_APPROVED_ITEMS, params)).scalar_one()
        return min(int(count), at_most)


@functools.cache
def _decision_statement(kind: ContentKind, scored: bool) -> ReturningUpdate[Any]:
    table = TABLES[kind]
    before = (
        select(table.c.id, table.c.guardrail_status.label("was"))
        .where(table.c.id == bindparam("d_content_id"))
        .with_for_update()
        .cte("before")
    )
    status = bindparam("d_status", type_=table.c.guardrail_status.type)
    values: dict[str, Any] = {
        "guardrail_status": status,
        "alignment_score": bindparam("d_alignment_score"),
        "aligned_domain": bindparam("d_aligned_domain"),
        "guardrail_explanation": bindparam("d_explanation"),
        "guardrail_decided_at": func.now(),
    }
    if scored:
        values.update({name: bindparam(f"d_{name}") for name in _SCORE_COLUMNS})
    parent = [table.c[name] for name in ("problem_id", "solution_id") if name in table.c]
    return (
        update(table)
        .where(table.c.id == before.c.id)
        .where(table.c.guardrail_evaluation_id == bindparam("d_evaluation_id"))
        # Idempotent, and final: an APPROVED or REJECTED evaluation is never overturned by a
        # late or retried job; only a FLAGGED one moves on, by human review.
        .where(
            or_(
                table.c.guardrail_decided_at.is_(None),
                and_(table.c.guardrail_status == "FLAGGED", table.c.guardrail_status != status),
            )
        )
        .values(**values)
        .returning(before.c.was, *parent)
    )


_APPROVED_ITEMS = select(func.count()).select_from(
    union_all(
        *(
            select(table.c.id)
            .where(table.c.author_agent_id == bindparam("author"))
            .where(table.c.guardrail_status == APPROVED)
            .limit(bindparam("at_most"))
            for table in (problems, solutions, debates)
        )
    ).subquery()
)
