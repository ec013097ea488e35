"""The agent service's store: agents, verification codes, the email outbox, check-ins and the
agents' API keys, as frozen records (`AgentStore`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError

from services.agent.model import AgentQuery, AgentRecord, NewAgent, ProfileChanges
from services.agent.tables import agents, heartbeat_checkins, verification_codes
from services.core import mail
from services.core.codes import CodeTable, VerificationCode
from services.core.credentials import store as credentials
from services.core.credentials.keys import NewKey
from services.core.ids import parse_uuid
from services.core.store import SqlStore

USERNAME_UNIQUE_INDEX = "uq_agents_username_lower"
_CODES = CodeTable(verification_codes, verification_codes.c.agent_id)


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


class UsernameTaken(Exception):
    """Another agent has this username (case-insensitively)."""


# Statements of the hottest paths (GetMe, Checkin) are built once and bound per call:
# composing them per call costs client CPU out of proportion to the request (bench/README.md,
# "Measurements behind the code").
_AGENT_BY_ID = select(agents).where(agents.c.id == bindparam("agent_id"))
_AGENT_BY_ID_LOCKED = _AGENT_BY_ID.with_for_update()
_INSERT_CHECKIN = insert(heartbeat_checkins).returning(
    heartbeat_checkins.c.id, heartbeat_checkins.c.received_at
)
_MOVE_HEARTBEAT = (
    update(agents)
    .where(agents.c.id == bindparam("agent_id"))
    .values(last_heartbeat_at=bindparam("received_at"))
)


def sort_key(agent: AgentRecord, *, by_reputation: bool) -> list[Any]:
    """The keyset position of an agent for a cursor."""
    primary: Any = str(agent.reputation_score) if by_reputation else agent.created_at.isoformat()
    return [primary, agent.id]


class AgentStore(SqlStore):
    """Agents and what belongs to them. Ids are strings; a malformed one finds nothing."""

    async def insert(self, new: NewAgent, *, claim_status: str, key: NewKey) -> AgentRecord:
        """Creates the agent and its first API key together; UsernameTaken when the name is."""
        try:
            async with self._db.atomic() as conn:
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
                await credentials.insert_key(
                    conn,
                    owner_kind="agent",
                    owner_id=row.id,
                    digest=key.digest,
                    display_prefix=key.display_prefix,
                )
        except IntegrityError as exc:
            if USERNAME_UNIQUE_INDEX in str(exc.orig):
                raise UsernameTaken(new.username) from None
            raise
        return _record(row)

    async def get(self, agent_id: str, *, lock: bool = False) -> AgentRecord | None:
        """One agent (locked until the transaction ends with `lock`), or None."""
        parsed = parse_uuid(agent_id)
        if parsed is None:
            return None
        statement = _AGENT_BY_ID_LOCKED if lock else _AGENT_BY_ID
        async with self._db.connect() as conn:
            row = (await conn.execute(statement, {"agent_id": parsed})).first()
        return _record(row) if row else None

    async def update_profile(self, agent_id: str, changes: ProfileChanges) -> AgentRecord | None:
        """Applies the profile fields sent; None when the agent is gone."""
        values: dict[str, Any] = {
            name: getattr(changes, name)
            for name in ("display_name", "soul_summary", "model_provider", "model_name")
            if getattr(changes, name) is not None
        }
        if changes.specializations is not None:
            values["specializations"] = list(changes.specializations)
        if changes.email is not None or changes.clear_email:
            values["email"] = changes.email
        return await self._update(agent_id, values)

    async def set_claim_status(self, agent_id: str, status: str) -> AgentRecord | None:
        """PENDING or VERIFIED; None when the agent is gone."""
        return await self._update(agent_id, {"claim_status": status})

    async def set_rate_limit(self, agent_id: str, limit: int | None) -> AgentRecord | None:
        """A per-minute override, or None for the default; None when the agent is gone."""
        return await self._update(agent_id, {"rate_limit_override": limit})

    async def set_active(self, agent_id: str, active: bool) -> AgentRecord | None:
        """Deactivates or reactivates; None when the agent is gone."""
        return await self._update(agent_id, {"is_active": active})

    async def _update(self, agent_id: str, values: dict[str, Any]) -> AgentRecord | None:
        parsed = parse_uuid(agent_id)
        if parsed is None:
            return None
        statement = (
            update(agents)
            .where(agents.c.id == parsed)
            .values(**values, updated_at=func.now())
            .returning(*agents.c)
        )
        async with self._db.connect() as conn:
            row = (await conn.execute(statement)).first()
        return _record(row) if row else None

    async def page(
        self, query: AgentQuery, *, after: list[Any] | None, count: int
    ) -> list[AgentRecord]:
        """Up to `count` agents after the key `[created_at ISO or reputation, id]`, newest (or
        most reputable) first."""
        statement = select(agents).where(agents.c.is_active == query.is_active)
        if query.framework:
            statement = statement.where(agents.c.framework == query.framework)
        if query.specialization:
            statement = statement.where(agents.c.specializations.contains([query.specialization]))
        primary = agents.c.reputation_score if query.by_reputation else agents.c.created_at
        if after is not None:
            key, last_id = after
            value: Any = key if query.by_reputation else datetime.fromisoformat(key)
            statement = statement.where(
                or_(primary < value, and_(primary == value, agents.c.id < uuid.UUID(last_id)))
            )
        statement = statement.order_by(primary.desc(), agents.c.id.desc()).limit(count)
        async with self._db.connect() as conn:
            return [_record(r) for r in (await conn.execute(statement)).all()]

    async def codes_sent_since(self, agent_id: str, since: datetime) -> int:
        """Verification codes sent to an agent since `since`."""
        async with self._db.connect() as conn:
            return int(
                (
                    await conn.execute(
                        select(func.count())
                        .select_from(verification_codes)
                        .where(verification_codes.c.agent_id == uuid.UUID(agent_id))
                        .where(verification_codes.c.created_at >= since)
                    )
                ).scalar_one()
            )

    async def add_code(self, agent_id: str, digest: bytes, expires_at: datetime) -> None:
        """Stores a new code and voids the agent's older unused ones."""
        async with self._db.atomic() as conn:
            await _CODES.add(conn, agent_id, digest, expires_at)

    async def current_code(self, agent_id: str) -> VerificationCode | None:
        """The agent's newest unused code (read it under the agent's lock)."""
        async with self._db.connect() as conn:
            return await _CODES.current(conn, agent_id)

    async def record_failed_attempt(self, code_id: str, *, void: bool) -> None:
        """Counts a wrong guess; `void` consumes the code so no more guesses are possible."""
        async with self._db.connect() as conn:
            await _CODES.record_failed(conn, code_id, void=void)

    async def consume_code(self, code_id: str) -> None:
        """Marks a code used."""
        async with self._db.connect() as conn:
            await _CODES.consume(conn, code_id)

    async def enqueue_email(self, *, recipient: str, subject: str, body: str) -> None:
        """Adds an email to the outbox (in a transaction: sent only if it commits)."""
        async with self._db.connect() as conn:
            await mail.enqueue_email(conn, recipient=recipient, subject=subject, body=body)

    async def add_checkin(
        self,
        agent_id: str,
        *,
        client_timestamp: datetime,
        instructions_version: str,
        activity_summary: dict[str, Any],
        client_version: str,
    ) -> tuple[str, datetime]:
        """Stores a check-in and moves the agent's last_heartbeat_at; returns (id, received_at)."""
        parsed = uuid.UUID(agent_id)
        async with self._db.atomic() as conn:
            row = (
                await conn.execute(
                    _INSERT_CHECKIN,
                    {
                        "agent_id": parsed,
                        "client_timestamp": client_timestamp,
                        "instructions_version": instructions_version,
                        "activity_summary": activity_summary,
                        "client_version": client_version,
                    },
                )
            ).one()
            await conn.execute(
                _MOVE_HEARTBEAT, {"agent_id": parsed, "received_at": row.received_at}
            )
        return str(row.id), row.received_at

    async def add_key(self, agent_id: str, key: NewKey) -> None:
        """Stores another API key of the agent."""
        async with self._db.connect() as conn:
            await credentials.insert_key(
                conn,
                owner_kind="agent",
                owner_id=uuid.UUID(agent_id),
                digest=key.digest,
                display_prefix=key.display_prefix,
            )

    async def expire_key(self, key_id: str, expires_at: datetime) -> None:
        """Limits a key's remaining life (never extends an earlier expiry)."""
        async with self._db.connect() as conn:
            await credentials.expire_key(conn, key_id=uuid.UUID(key_id), expires_at=expires_at)

    async def key_digests(self, agent_id: str) -> list[bytes]:
        """Every key digest of the agent (to drop their cached lookups)."""
        async with self._db.connect() as conn:
            return await credentials.owner_key_digests(conn, owner_id=uuid.UUID(agent_id))

    async def active_since(self, since: datetime) -> int:
        """Active agents that checked in at or after `since`."""
        async with self._db.connect() as conn:
            return int(
                (
                    await conn.execute(
                        select(func.count())
                        .select_from(agents)
                        .where(agents.c.is_active)
                        .where(agents.c.last_heartbeat_at >= since)
                    )
                ).scalar_one()
            )
