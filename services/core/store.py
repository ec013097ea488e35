"""The base of every service's SQL store (see `SqlStore`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Self, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.core import audit
from services.core.context import Principal
from services.core.db import Connector

S = TypeVar("S", bound="SqlStore")


class SqlStore:
    """Base of a service's store: built on the engine, each call commits on its own;
    `transaction()` gives the same store bound to one transaction, so a domain function makes
    several calls commit (or roll back) together without ever touching a connection."""

    def __init__(self, engine: AsyncEngine, conn: AsyncConnection | None = None) -> None:
        self._db = Connector(engine, conn)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Self]:
        """This store bound to one transaction, committed when the block ends normally."""
        async with self._db.engine.begin() as conn:
            yield type(self)(self._db.engine, conn)

    def bound(self, store: type[S]) -> S:
        """Another store on this one's transaction (or, outside one, on its own), so writes to
        several stores' tables commit together."""
        return store(self._db.engine, self._db.conn)

    async def audit(
        self,
        operator: Principal,
        action: str,
        *,
        target_type: str,
        target_id: str,
        details: dict[str, Any],
    ) -> None:
        """Writes an operator's action to the audit log: in a transaction, it commits (or rolls
        back) with the action itself."""
        async with self._db.connect() as conn:
            await audit.record(
                conn,
                operator=operator,
                action=action,
                target_type=target_type,
                target_id=target_id,
                details=details,
            )
