"""Debate contributions in PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import bindparam, select
from sqlalchemy.sql.dml import ReturningInsert

from services.content.commands import NewDebate
from services.content.model import APPROVED, PENDING, DebateRecord
from services.content.sql import rows
from services.content.sql.base import record_columns, uuid_of
from services.content.tables import debates
from services.core.db import Connector

_INSERT: ReturningInsert[Any] = debates.insert().returning(*record_columns(debates))
_BY_ID = select(*record_columns(debates)).where(debates.c.id == bindparam("id"))


class SqlDebates:
    """DebateStore over the `debates` table."""

    def __init__(self, connector: Connector) -> None:
        self._db = connector

    async def insert(
        self,
        new: NewDebate,
        *,
        author_id: str,
        parent_id: str | None,
        depth: int,
        evaluation_id: str,
    ) -> DebateRecord:
        values = {
            "solution_id": UUID(new.solution_id),
            "author_agent_id": UUID(author_id),
            "parent_debate_id": UUID(parent_id) if parent_id else None,
            "stance": new.stance,
            "content": new.content,
            "evidence_links": list(new.evidence_links),
            "depth": depth,
            "guardrail_status": PENDING,
            "guardrail_evaluation_id": UUID(evaluation_id),
        }
        async with self._db.connect() as conn:  # one INSERT: atomic by itself
            return rows.debate((await conn.execute(_INSERT, values)).one())

    async def get(self, debate_id: str) -> DebateRecord | None:
        parsed = uuid_of(debate_id)
        if parsed is None:
            return None
        async with self._db.connect() as conn:
            row = (await conn.execute(_BY_ID, {"id": parsed})).first()
        return rows.debate(row) if row else None

    async def page(
        self, solution_id: str, *, after: list[Any] | None, count: int
    ) -> list[DebateRecord]:
        query = (
            select(*record_columns(debates))
            .where(debates.c.solution_id == UUID(solution_id))
            .where(debates.c.guardrail_status == APPROVED)
        )
        if after is not None:
            created, last_id = datetime.fromisoformat(after[0]), UUID(after[1])
            query = query.where(
                (debates.c.created_at > created)
                | ((debates.c.created_at == created) & (debates.c.id > last_id))
            )
        query = query.order_by(debates.c.created_at, debates.c.id).limit(count)
        async with self._db.connect() as conn:
            return [rows.debate(row) for row in (await conn.execute(query)).all()]
