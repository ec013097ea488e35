"""Email verification codes: 6 digits, kept only as a digest salted by their owner's id, the
newest unused one valid, a few guesses each. Agents and humans have a table of this shape each;
`CodeTable` works on either, inside the caller's transaction."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Table, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection


@dataclass(frozen=True)
class VerificationCode:
    """An owner's newest unused code, as stored (the code itself is not)."""

    id: str
    digest: bytes
    expires_at: datetime
    failed_attempts: int


def new_code() -> str:
    """Six random digits."""
    return f"{secrets.randbelow(1_000_000):06d}"


def code_digest(owner_id: str, code: str) -> bytes:
    """What is stored of a code: salted by its owner, so equal codes of two owners differ."""
    return hashlib.sha256(f"{owner_id}:{code}".encode()).digest()


@dataclass(frozen=True)
class CodeTable:
    """A codes table and the column naming each code's owner."""

    table: Table
    owner: Column[Any]

    async def add(
        self, conn: AsyncConnection, owner_id: str, digest: bytes, expires_at: datetime
    ) -> None:
        """Stores a new code and voids the owner's older unused ones."""
        owner = uuid.UUID(owner_id)
        await conn.execute(
            update(self.table)
            .where(self.owner == owner)
            .where(self.table.c.consumed_at.is_(None))
            .values(consumed_at=func.now())
        )
        await conn.execute(
            insert(self.table).values(
                {self.owner.name: owner, "code_digest": digest, "expires_at": expires_at}
            )
        )

    async def current(self, conn: AsyncConnection, owner_id: str) -> VerificationCode | None:
        """The owner's newest unused code (read it under the owner's row lock)."""
        row = (
            await conn.execute(
                select(self.table)
                .where(self.owner == uuid.UUID(owner_id))
                .where(self.table.c.consumed_at.is_(None))
                .order_by(self.table.c.created_at.desc())
                .limit(1)
            )
        ).first()
        if row is None:
            return None
        return VerificationCode(
            str(row.id), bytes(row.code_digest), row.expires_at, row.failed_attempts
        )

    async def record_failed(self, conn: AsyncConnection, code_id: str, *, void: bool) -> None:
        """Counts a wrong guess; `void` consumes the code so no more guesses are possible."""
        values: dict[str, Any] = {"failed_attempts": self.table.c.failed_attempts + 1}
        if void:
            values["consumed_at"] = func.now()
        await conn.execute(
            update(self.table).where(self.table.c.id == uuid.UUID(code_id)).values(**values)
        )

    async def consume(self, conn: AsyncConnection, code_id: str) -> None:
        """Marks a code used."""
        await conn.execute(
            update(self.table)
            .where(self.table.c.id == uuid.UUID(code_id))
            .values(consumed_at=func.now())
        )
