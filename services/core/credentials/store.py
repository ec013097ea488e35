"""SQL for credentials, including the one cross-service read: API key digest to its owner."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.core.credentials.tables import api_keys, operators
from services.core.db import autocommit

# The shared read of DESIGN.md §4: the agent columns authentication needs.
_AGENT_FOR_KEY = text(
    "SELECT username, is_active, claim_status, rate_limit_override, created_at"
    " FROM agents WHERE id = :id"
)


@dataclass(frozen=True)
class KeyOwner:
    """What a key resolves to."""

    key_id: str
    owner_kind: str
    owner_id: str
    name: str
    expires_at: datetime | None
    revoked: bool
    active: bool
    verified: bool
    rate_limit_override: int | None
    created_at: datetime | None = None


async def find_key_owner(engine: AsyncEngine, digest: bytes) -> KeyOwner | None:
    """The owner of a key digest, or None when no key has that digest."""
    async with autocommit(engine) as conn:
        row = (
            await conn.execute(
                select(
                    api_keys.c.id,
                    api_keys.c.owner_kind,
                    api_keys.c.owner_id,
                    api_keys.c.expires_at,
                    api_keys.c.revoked_at,
                ).where(api_keys.c.key_digest == digest)
            )
        ).first()
        if row is None:
            return None
        if row.owner_kind == "agent":
            agent = (await conn.execute(_AGENT_FOR_KEY, {"id": row.owner_id})).first()
            if agent is None:
                return None
            return KeyOwner(
                key_id=str(row.id),
                owner_kind="agent",
                owner_id=str(row.owner_id),
                name=agent.username,
                expires_at=row.expires_at,
                revoked=row.revoked_at is not None,
                active=agent.is_active,
                verified=agent.claim_status == "VERIFIED",
                rate_limit_override=agent.rate_limit_override,
                created_at=agent.created_at,
            )
        op = (
            await conn.execute(select(operators.c.name).where(operators.c.id == row.owner_id))
        ).first()
        if op is None:
            return None
        return KeyOwner(
            key_id=str(row.id),
            owner_kind="operator",
            owner_id=str(row.owner_id),
            name=op.name,
            expires_at=row.expires_at,
            revoked=row.revoked_at is not None,
            active=True,
            verified=True,
            rate_limit_override=None,
        )


async def insert_key(
    conn: AsyncConnection,
    *,
    owner_kind: str,
    owner_id: uuid.UUID,
    digest: bytes,
    display_prefix: str,
) -> uuid.UUID:
    """Stores a new key digest; runs inside the caller's transaction."""
    result = await conn.execute(
        insert(api_keys)
        .values(
            owner_kind=owner_kind,
            owner_id=owner_id,
            key_digest=digest,
            display_prefix=display_prefix,
        )
        .returning(api_keys.c.id)
    )
    return uuid.UUID(str(result.scalar_one()))


async def expire_key(conn: AsyncConnection, *, key_id: uuid.UUID, expires_at: datetime) -> None:
    """Limits a key's remaining life (rotation); never extends an earlier expiry."""
    await conn.execute(
        update(api_keys)
        .where(api_keys.c.id == key_id)
        .where((api_keys.c.expires_at.is_(None)) | (api_keys.c.expires_at > expires_at))
        .values(expires_at=expires_at)
    )


async def owner_key_digests(conn: AsyncConnection, *, owner_id: uuid.UUID) -> list[bytes]:
    """Every key digest of an owner, to invalidate cached lookups."""
    rows = await conn.execute(select(api_keys.c.key_digest).where(api_keys.c.owner_id == owner_id))
    return [bytes(r.key_digest) for r in rows]


async def create_operator(
    engine: AsyncEngine, *, name: str, digest: bytes, display_prefix: str
) -> str:
    """Creates the operator if new and adds a key to it; returns the operator id."""
    async with engine.begin() as conn:
        existing = (
            await conn.execute(select(operators.c.id).where(operators.c.name == name))
        ).scalar_one_or_none()
        operator_id = (
            existing
            or (
                await conn.execute(insert(operators).values(name=name).returning(operators.c.id))
            ).scalar_one()
        )
        await insert_key(
            conn,
            owner_kind="operator",
            owner_id=operator_id,
            digest=digest,
            display_prefix=display_prefix,
        )
        return str(operator_id)
