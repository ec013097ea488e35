"""SQL for the guardrail's tables."""

from __future__ import annotations

import functools
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.core.db import autocommit
from services.guardrail.tables import evaluations, flagged


@functools.cache
def _upsert_evaluation(columns: frozenset[str]) -> Any:
    # One statement per set of columns (an evaluation and a dead letter send different ones),
    # built once: composing the upsert per job cost more than running it. A retried job
    # replaces exactly the columns it sends.
    statement = insert(evaluations)
    return statement.on_conflict_do_update(
        index_elements=[evaluations.c.id],
        set_={name: statement.excluded[name] for name in sorted(columns) if name != "id"},
    )


_FLAG = insert(flagged).on_conflict_do_nothing(index_elements=[flagged.c.evaluation_id])


async def record_evaluation(engine: AsyncEngine, values: dict[str, Any], *, reason: str) -> None:
    """Stores (or, on a retried job, replaces) an evaluation; FLAGGED ones enter the queue."""
    async with engine.begin() as conn:
        await conn.execute(_upsert_evaluation(frozenset(values)), values)
        if values["decision"] == "FLAGGED":
            await conn.execute(
                _FLAG,
                {
                    "evaluation_id": values["id"],
                    "content_kind": values["content_kind"],
                    "content_id": values["content_id"],
                    "reason": reason,
                },
            )


def as_uuid(value: str) -> uuid.UUID:
    """A UUID from its text."""
    return uuid.UUID(value)


async def evaluation(engine: AsyncEngine, evaluation_id: uuid.UUID) -> Any:
    """One evaluation row, or None."""
    async with autocommit(engine) as conn:
        return (
            await conn.execute(select(evaluations).where(evaluations.c.id == evaluation_id))
        ).first()


async def flagged_item(engine: AsyncEngine, flagged_id: uuid.UUID) -> Any:
    """One review-queue row, or None."""
    async with autocommit(engine) as conn:
        return (await conn.execute(select(flagged).where(flagged.c.id == flagged_id))).first()


async def list_flagged(
    engine: AsyncEngine,
    *,
    statuses: tuple[str, ...],
    kind: str | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Any]:
    """Review-queue rows, oldest first."""
    query = select(flagged).where(flagged.c.status.in_(statuses))
    if kind:
        query = query.where(flagged.c.content_kind == kind)
    if after is not None:
        created, last = after
        query = query.where(
            (flagged.c.created_at > created)
            | ((flagged.c.created_at == created) & (flagged.c.id > last))
        )
    query = query.order_by(flagged.c.created_at, flagged.c.id).limit(limit)
    async with autocommit(engine) as conn:
        return list((await conn.execute(query)).all())


async def claim(engine: AsyncEngine, flagged_id: uuid.UUID, operator: str) -> Any:
    """Claims a WAITING item (or re-claims one's own) atomically; None when someone else has it."""
    async with engine.begin() as conn:
        return (
            await conn.execute(
                update(flagged)
                .where(flagged.c.id == flagged_id)
                .where(
                    (flagged.c.status == "WAITING")
                    | ((flagged.c.status == "CLAIMED") & (flagged.c.claimed_by == operator))
                )
                .values(status="CLAIMED", claimed_by=operator, claimed_at=func.now())
                .returning(*flagged.c)
            )
        ).first()


async def resolve(
    conn: AsyncConnection, flagged_id: uuid.UUID, *, operator: str, decision: str, notes: str
) -> Any:
    """Marks a claimed item reviewed by its claimer; None when not claimed by `operator`."""
    return (
        await conn.execute(
            update(flagged)
            .where(flagged.c.id == flagged_id)
            .where(flagged.c.status == "CLAIMED")
            .where(flagged.c.claimed_by == operator)
            .values(
                status="RESOLVED",
                review_decision=decision,
                review_notes=notes,
                reviewed_at=func.now(),
            )
            .returning(*flagged.c)
        )
    ).first()


async def stats(engine: AsyncEngine, since: datetime) -> Any:
    """Decision counts, cache hits and layer latency percentiles since `since`."""
    layer_a = evaluations.c.timings_ms["layer_a"].as_float()
    layer_b = evaluations.c.timings_ms["layer_b"].as_float()
    query = select(
        func.count().label("total"),
        func.count().filter(evaluations.c.decision == "APPROVED").label("approved"),
        func.count().filter(evaluations.c.decision == "FLAGGED").label("flagged"),
        func.count().filter(evaluations.c.decision == "REJECTED").label("rejected"),
        func.count().filter(evaluations.c.layer_b.is_not(None)).label("layer_b_runs"),
        func.count().filter(evaluations.c.cache_hit == "true").label("cache_hits"),
        func.percentile_cont(0.5).within_group(layer_a).label("a50"),
        func.percentile_cont(0.99).within_group(layer_a).label("a99"),
        func.percentile_cont(0.5).within_group(layer_b).label("b50"),
        func.percentile_cont(0.99).within_group(layer_b).label("b99"),
    ).where(evaluations.c.created_at >= since)
    async with autocommit(engine) as conn:
        row = (await conn.execute(query)).one()
        waiting = (
            await conn.execute(
                select(func.count()).select_from(flagged).where(flagged.c.status == "WAITING")
            )
        ).scalar_one()
    return row, int(waiting)
