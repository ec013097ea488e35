"""SQL for the agent service's tables."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.agent.model import AgentRecord, NewAgent
from services.agent.tables import agents, email_outbox, heartbeat_checkins, verification_codes
from services.core.db import autocommit

USERNAME_UNIQUE_INDEX = "uq_agents_username_lower"


def _record(row: Row[Any]) -> AgentRecord:
    return AgentRecord(
        id=str(row.id),
        username=row.username,
        display_name=row.display_name,
        email=row.email,
        framework=row.framework,
        specializations=tuple(row.specializations),
        soul_summary=row.soul_summary,
        model_provider=row.model_provider,
        model_name=row.model_name,
        claim_status=row.claim_status,
        is_active=row.is_active,
        reputation_score=float(row.reputation_score),
        rate_limit_override=row.rate_limit_override,
        last_heartbeat_at=row.last_heartbeat_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def insert_agent(conn: AsyncConnection, new: NewAgent, *, claim_status: str) -> AgentRecord:
    """Inserts an agent; a taken username raises IntegrityError on USERNAME_UNIQUE_INDEX."""
    row = (
        await conn.execute(
            insert(agents)
            .values(
                username=new.username,
                framework=new.framework,
                specializations=list(new.specializations),
                email=new.email,
                display_name=new.display_name,
                soul_summary=new.soul_summary,
                model_provider=new.model_provider,
                model_name=new.model_name,
                claim_status=claim_status,
            )
            .returning(*agents.c)
        )
    ).one()
    return _record(row)


# Statements of the hottest paths (GetMe, Checkin) are built once and bound per call:
# composing them per call costs client CPU out of proportion to the request (bench/README.md,
# "Measurements behind the code").
_AGENT_BY_ID = select(agents).where(agents.c.id == bindparam("agent_id"))
_INSERT_CHECKIN = insert(heartbeat_checkins).returning(
    heartbeat_checkins.c.id, heartbeat_checkins.c.received_at
)
_MOVE_HEARTBEAT = (
    update(agents)
    .where(agents.c.id == bindparam("agent_id"))
    .values(last_heartbeat_at=bindparam("received_at"))
)


async def get_agent(engine: AsyncEngine, agent_id: uuid.UUID) -> AgentRecord | None:
    """One agent by id."""
    async with autocommit(engine) as conn:
        return await get_agent_in(conn, agent_id)


async def get_agent_in(conn: AsyncConnection, agent_id: uuid.UUID) -> AgentRecord | None:
    """One agent by id, inside the caller's transaction."""
    row = (await conn.execute(_AGENT_BY_ID, {"agent_id": agent_id})).first()
    return _record(row) if row else None


async def update_agent(
    conn: AsyncConnection, agent_id: uuid.UUID, values: dict[str, Any]
) -> AgentRecord | None:
    """Applies `values` (column → value) and bumps updated_at; None when the agent is gone."""
    row = (
        await conn.execute(
            update(agents)
            .where(agents.c.id == agent_id)
            .values(**values, updated_at=func.now())
            .returning(*agents.c)
        )
    ).first()
    return _record(row) if row else None


async def list_agents(
    engine: AsyncEngine,
    *,
    framework: str | None,
    specialization: str | None,
    is_active: bool,
    by_reputation: bool,
    after: list[Any] | None,
    limit: int,
) -> list[AgentRecord]:
    """Up to `limit` agents after the keyset `after`, newest (or most reputable) first."""
    query = select(agents).where(agents.c.is_active == is_active)
    if framework:
        query = query.where(agents.c.framework == framework)
    if specialization:
        query = query.where(agents.c.specializations.contains([specialization]))
    primary = agents.c.reputation_score if by_reputation else agents.c.created_at
    if after is not None:
        key, last_id = after
        value: Any = key if by_reputation else datetime.fromisoformat(key)
        query = query.where(
            or_(primary < value, and_(primary == value, agents.c.id < uuid.UUID(last_id)))
        )
    query = query.order_by(primary.desc(), agents.c.id.desc()).limit(limit)
    async with autocommit(engine) as conn:
        rows = (await conn.execute(query)).all()
    return [_record(r) for r in rows]


def sort_key(agent: AgentRecord, *, by_reputation: bool) -> list[Any]:
    """The keyset position of an agent for a cursor."""
    primary: Any = str(agent.reputation_score) if by_reputation else agent.created_at.isoformat()
    return [primary, agent.id]


async def count_codes_since(conn: AsyncConnection, agent_id: uuid.UUID, since: datetime) -> int:
    """Verification codes sent to an agent since `since`."""
    return int(
        (
            await conn.execute(
                select(func.count())
                .select_from(verification_codes)
                .where(verification_codes.c.agent_id == agent_id)
                .where(verification_codes.c.created_at >= since)
            )
        ).scalar_one()
    )


async def lock_agent(conn: AsyncConnection, agent_id: uuid.UUID) -> None:
    """Row lock that serializes verification sends and checks of one agent."""
    await conn.execute(select(agents.c.id).where(agents.c.id == agent_id).with_for_update())


async def insert_code(
    conn: AsyncConnection, agent_id: uuid.UUID, digest: bytes, expires_at: datetime
) -> None:
    """Stores a new code and voids the agent's older unused ones."""
    await conn.execute(
        update(verification_codes)
        .where(verification_codes.c.agent_id == agent_id)
        .where(verification_codes.c.consumed_at.is_(None))
        .values(consumed_at=func.now())
    )
    await conn.execute(
        insert(verification_codes).values(
            agent_id=agent_id, code_digest=digest, expires_at=expires_at
        )
    )


async def current_code(conn: AsyncConnection, agent_id: uuid.UUID) -> Row[Any] | None:
    """The agent's newest unused code (caller holds the agent lock)."""
    return (
        await conn.execute(
            select(verification_codes)
            .where(verification_codes.c.agent_id == agent_id)
            .where(verification_codes.c.consumed_at.is_(None))
            .order_by(verification_codes.c.created_at.desc())
            .limit(1)
        )
    ).first()


async def record_failed_attempt(conn: AsyncConnection, code_id: uuid.UUID, *, void: bool) -> None:
    """Counts a wrong guess; `void` consumes the code so no more guesses are possible."""
    values: dict[str, Any] = {"failed_attempts": verification_codes.c.failed_attempts + 1}
    if void:
        values["consumed_at"] = func.now()
    await conn.execute(
        update(verification_codes).where(verification_codes.c.id == code_id).values(**values)
    )


async def consume_code(conn: AsyncConnection, code_id: uuid.UUID) -> None:
    """Marks a code used."""
    await conn.execute(
        update(verification_codes)
        .where(verification_codes.c.id == code_id)
        .values(consumed_at=func.now())
    )


async def enqueue_email(conn: AsyncConnection, *, recipient: str, subject: str, body: str) -> None:
    """Adds an email to the outbox in the caller's transaction."""
    await conn.execute(insert(email_outbox).values(recipient=recipient, subject=subject, body=body))


async def insert_checkin(
    conn: AsyncConnection,
    *,
    agent_id: uuid.UUID,
    client_timestamp: datetime,
    instructions_version: str,
    activity_summary: dict[str, Any],
    client_version: str,
) -> tuple[str, datetime]:
    """Stores a check-in and moves the agent's last_heartbeat_at; returns (id, received_at)."""
    row = (
        await conn.execute(
            _INSERT_CHECKIN,
            {
                "agent_id": agent_id,
                "client_timestamp": client_timestamp,
                "instructions_version": instructions_version,
                "activity_summary": activity_summary,
                "client_version": client_version,
            },
        )
    ).one()
    await conn.execute(_MOVE_HEARTBEAT, {"agent_id": agent_id, "received_at": row.received_at})
    return str(row.id), row.received_at
