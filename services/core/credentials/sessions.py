"""Humans' login sessions: created at login, rotated on refresh, revoked on logout, on reuse of
a rotated-out refresh token, or by an operator. The authenticator asks `state` (cached) on every
request carrying an access token, so a revoked session's tokens stop working at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.core.credentials.tables import human_sessions
from services.core.db import autocommit
from services.core.logging import get_logger

log = get_logger(__name__)
_CACHE_PREFIX = "bw:session:"


class SessionState(StrEnum):
    """Whether a session's tokens are honoured."""

    ACTIVE = "active"
    REVOKED = "revoked"
    """Logged out, revoked for refresh-token reuse, or expired: UNAUTHENTICATED."""
    OWNER_INACTIVE = "owner_inactive"
    """The human is deactivated: PERMISSION_DENIED."""


class Rotation(StrEnum):
    """What presenting a refresh token did."""

    ROTATED = "rotated"
    REUSED = "reused"
    """A rotated-out refresh token came back: the session is revoked."""
    REVOKED = "revoked"
    OWNER_INACTIVE = "owner_inactive"


async def create(
    conn: AsyncConnection,
    *,
    session_id: str,
    human_id: str,
    refresh_jti: str,
    expires_at: datetime,
) -> None:
    """Stores a new session in the caller's transaction."""
    await conn.execute(
        insert(human_sessions).values(
            id=uuid.UUID(session_id),
            human_id=uuid.UUID(human_id),
            refresh_jti=uuid.UUID(refresh_jti),
            expires_at=expires_at,
        )
    )


async def rotate(
    conn: AsyncConnection,
    *,
    session_id: str,
    presented_jti: str,
    new_jti: str,
    expires_at: datetime,
) -> Rotation:
    """Replaces the session's refresh token when `presented_jti` is its current one.

    Under a row lock, so two refreshes racing with the same token cannot both win: the loser
    presents a token that is no longer current, which is reuse, and revokes the session.
    """
    sid = uuid.UUID(session_id)
    row = (
        await conn.execute(
            select(
                human_sessions.c.refresh_jti,
                human_sessions.c.revoked_at,
                human_sessions.c.owner_active,
                human_sessions.c.expires_at > func.now(),
            )
            .where(human_sessions.c.id == sid)
            .with_for_update()
        )
    ).first()
    if row is None or row.revoked_at is not None or not row[3]:
        return Rotation.REVOKED
    if not row.owner_active:
        return Rotation.OWNER_INACTIVE
    if str(row.refresh_jti) != presented_jti:
        await revoke(conn, [session_id], reason="refresh_reuse")
        return Rotation.REUSED
    await conn.execute(
        update(human_sessions)
        .where(human_sessions.c.id == sid)
        .values(refresh_jti=uuid.UUID(new_jti), refreshed_at=func.now(), expires_at=expires_at)
    )
    return Rotation.ROTATED


async def revoke(conn: AsyncConnection, session_ids: Iterable[str], *, reason: str) -> None:
    """Revokes sessions (in the caller's transaction); already revoked ones keep their reason."""
    ids = [uuid.UUID(s) for s in session_ids]
    if ids:
        await conn.execute(
            update(human_sessions)
            .where(human_sessions.c.id.in_(ids))
            .where(human_sessions.c.revoked_at.is_(None))
            .values(revoked_at=func.now(), revoked_reason=reason)
        )


async def set_owner_active(conn: AsyncConnection, human_id: str, active: bool) -> list[str]:
    """Marks every session of the human (in)active; returns their ids, to forget cached states."""
    result = await conn.execute(
        update(human_sessions)
        .where(human_sessions.c.human_id == uuid.UUID(human_id))
        .values(owner_active=active)
        .returning(human_sessions.c.id)
    )
    return [str(row.id) for row in result]


async def state(engine: AsyncEngine, session_id: str) -> SessionState:
    """A session's state from PostgreSQL (an unknown or expired session is revoked)."""
    async with autocommit(engine) as conn:
        row = (
            await conn.execute(
                select(
                    human_sessions.c.revoked_at,
                    human_sessions.c.owner_active,
                    human_sessions.c.expires_at > func.now(),
                ).where(human_sessions.c.id == uuid.UUID(session_id))
            )
        ).first()
    if row is None or row.revoked_at is not None or not row[2]:
        return SessionState.REVOKED
    return SessionState.ACTIVE if row.owner_active else SessionState.OWNER_INACTIVE


def cache_key(session_id: str) -> str:
    """Where the authenticator caches a session's state."""
    return _CACHE_PREFIX + session_id


async def forget(redis: Redis, session_ids: Iterable[str]) -> None:
    """Drops cached states after a change, so the next request reads the new one.

    Call it after the change committed. Best effort: when Redis is unreachable the committed
    change still stands and a stale cached state lives at most AUTH_CACHE_TTL_SECONDS.
    """
    keys = [cache_key(s) for s in session_ids]
    if not keys:
        return
    try:
        await redis.delete(*keys)
    except (RedisError, OSError):
        log.error("session_cache_invalidation_failed", sessions=len(keys))
