"""Solutions in PostgreSQL."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.sql.dml import ReturningInsert

from services.content.commands import NewSolution, SolutionChanges, SolutionQuery
from services.content.model import APPROVED, PENDING, EstimatedCost, SolutionRecord
from services.content.sql import rows
from services.content.sql.base import (
    after_key,
    back_to_moderation,
    record_columns,
    uuid_of,
)
from services.content.tables import solutions
from services.core.db import Connector

_INSERT: ReturningInsert[Any] = solutions.insert().returning(*record_columns(solutions))
_BY_ID = select(*record_columns(solutions)).where(solutions.c.id == bindparam("id"))
_BY_ID_LOCKED = _BY_ID.with_for_update()


def _cost_columns(cost: EstimatedCost | None) -> dict[str, Any]:
    if cost is None:
        return {}
    return {"estimated_cost_amount": cost.amount, "estimated_cost_currency": cost.currency}


class SqlSolutions:
    """SolutionStore over the `solutions` table."""

    def __init__(self, connector: Connector) -> None:
        self._db = connector

    async def insert(
        self, new: NewSolution, *, author_id: str, evaluation_id: str
    ) -> SolutionRecord:
        values = {
            "problem_id": UUID(new.problem_id),
            "title": new.title,
            "description": new.description,
            "approach": new.approach,
            "timeline_estimate": new.timeline_estimate,
            "expected_impact": asdict(new.expected_impact) if new.expected_impact else None,
            **_cost_columns(new.estimated_cost),
            "risks_and_mitigations": [asdict(r) for r in new.risks_and_mitigations],
            "required_skills": list(new.required_skills),
            "required_locations": list(new.required_locations),
            "author_agent_id": UUID(author_id),
            "guardrail_status": PENDING,
            "guardrail_evaluation_id": UUID(evaluation_id),
        }
        async with self._db.connect() as conn:  # one INSERT: atomic by itself
            return rows.solution((await conn.execute(_INSERT, values)).one())

    async def get(self, solution_id: str, *, lock: bool = False) -> SolutionRecord | None:
        parsed = uuid_of(solution_id)
        if parsed is None:
            return None
        async with self._db.connect() as conn:
            row = (await conn.execute(_BY_ID_LOCKED if lock else _BY_ID, {"id": parsed})).first()
        return rows.solution(row) if row else None

    async def resubmit(
        self, solution_id: str, changes: SolutionChanges, *, evaluation_id: str
    ) -> SolutionRecord:
        values: dict[str, Any] = {
            name: value
            for name, value in changes.sent().items()
            if name not in ("expected_impact", "estimated_cost")
        }
        if changes.expected_impact is not None:
            values["expected_impact"] = asdict(changes.expected_impact)
        values.update(_cost_columns(changes.estimated_cost))
        if changes.changes_text:
            values.update(embedding=None, embedding_model=None)  # the worker embeds the new text
        values.update(back_to_moderation(evaluation_id))
        return await self._change(solution_id, values)

    async def archive(self, solution_id: str) -> SolutionRecord:
        return await self._change(solution_id, {"status": "ARCHIVED"})

    async def _change(self, solution_id: str, values: dict[str, Any]) -> SolutionRecord:
        statement = (
            update(solutions)
            .where(solutions.c.id == UUID(solution_id))
            .values(**values, updated_at=func.now())
            .returning(*record_columns(solutions))
        )
        async with self._db.connect() as conn:
            return rows.solution((await conn.execute(statement)).one())

    async def count_debates(self, solution_id: str, delta: int) -> None:
        values: dict[str, Any] = {"debate_count": solutions.c.debate_count + delta}
        if delta > 0:
            values["status"] = func.coalesce(
                func.nullif(solutions.c.status, "PROPOSED"), "DEBATING"
            )
        async with self._db.connect() as conn:
            await conn.execute(
                update(solutions).where(solutions.c.id == UUID(solution_id)).values(**values)
            )

    async def page(
        self, query: SolutionQuery, *, author_id: str | None, after: list[Any] | None, count: int
    ) -> list[SolutionRecord]:
        statement = select(*record_columns(solutions))
        if query.problem_id:
            statement = statement.where(solutions.c.problem_id == UUID(query.problem_id))
        statement = statement.where(
            solutions.c.status == query.status if query.status else solutions.c.status != "ARCHIVED"
        )
        if author_id is not None:
            statement = statement.where(solutions.c.author_agent_id == UUID(author_id))
        else:
            statement = statement.where(solutions.c.guardrail_status == APPROVED)
        if query.by_score:
            statement = statement.where(solutions.c.composite_score.is_not(None))
            columns = [solutions.c.composite_score, solutions.c.created_at, solutions.c.id]
        else:
            columns = [solutions.c.created_at, solutions.c.id]
        decoded = None
        if after is not None:
            decoded = [*after[:-2], datetime.fromisoformat(after[-2]), UUID(after[-1])]
        statement = after_key(statement, columns, decoded)
        statement = statement.order_by(*(c.desc() for c in columns)).limit(count)
        async with self._db.connect() as conn:
            return [rows.solution(row) for row in (await conn.execute(statement)).all()]
