"""The ImpactToken ledger (`LedgerStore`): balances and their append-only history.

Every movement runs in one transaction that holds the human's balance row locked: the
idempotency key is looked up, the new row is written with `balance_before` read under the lock,
and the balance follows, all in the database function `post_token_movement` (one round trip).
Concurrent movements of one human therefore queue on that row, and the table's CHECKs refuse
whatever would not add up or go below zero, even from a bug.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, text
from sqlalchemy.engine import Row

from services.core.store import SqlStore
from services.mission.model import (
    EARN_TYPES,
    BalanceRecord,
    Drift,
    LedgerCheck,
    Movement,
    Posted,
    TransactionRecord,
)
from services.mission.tables import token_balances, token_ledger

_POST = text(
    "SELECT * FROM post_token_movement(:human, :amount, :type, :reference, :description, "
    ":key, :digest)"
)


class InsufficientBalance(Exception):
    """A spend larger than the balance."""

    def __init__(self, balance: int) -> None:
        super().__init__(balance)
        self.balance = balance


class KeyReused(Exception):
    """The idempotency key was used for a different movement."""


def request_digest(movement: Movement) -> bytes:
    """What a movement asked for, to tell a retry from a different request with the same key."""
    parts = (movement.amount, movement.type, movement.reference_id, movement.description)
    return hashlib.sha256(repr(parts).encode()).digest()


def _transaction(row: Row[Any]) -> TransactionRecord:
    return TransactionRecord(
        id=str(row.id),
        human_id=str(row.human_id),
        amount=row.amount,
        balance_before=row.balance_before,
        balance_after=row.balance_after,
        type=row.type,
        reference_id=row.reference_id,
        description=row.description,
        created_at=row.created_at,
    )


def _balance(row: Row[Any] | None) -> BalanceRecord:
    if row is None:
        return BalanceRecord(0, 0, 0)
    return BalanceRecord(row.balance, row.total_earned, row.total_spent)


class LedgerStore(SqlStore):
    """Balances and ledger rows. `post` runs in its own transaction, or in the bound one (a
    reward commits with the verdict that earns it)."""

    async def balance(self, human_id: str) -> BalanceRecord:
        """The human's balance (zero before their first movement)."""
        async with self._db.connect() as conn:
            row = (
                await conn.execute(
                    select(token_balances).where(token_balances.c.human_id == uuid.UUID(human_id))
                )
            ).first()
        return _balance(row)

    async def post(self, movement: Movement) -> Posted:
        """Writes the movement once per idempotency key. Raises InsufficientBalance when a
        spend exceeds the balance and KeyReused when the key named another movement; in both
        cases nothing is written. One statement: the database function `post_token_movement`
        (migration 0014) does every step under the balance row's lock."""
        human = uuid.UUID(movement.human_id)
        async with self._db.atomic() as conn:
            row = (
                await conn.execute(
                    _POST,
                    {
                        "human": human,
                        "amount": movement.amount,
                        "type": movement.type,
                        "reference": movement.reference_id,
                        "description": movement.description,
                        "key": movement.idempotency_key,
                        "digest": request_digest(movement),
                    },
                )
            ).one()
        balance = BalanceRecord(row.r_balance, row.r_total_earned, row.r_total_spent)
        if row.r_outcome == "insufficient":
            raise InsufficientBalance(row.r_balance)
        if row.r_outcome == "reused":
            raise KeyReused(movement.idempotency_key)
        transaction = TransactionRecord(
            id=str(row.r_id),
            human_id=movement.human_id,
            amount=row.r_amount,
            balance_before=row.r_balance_before,
            balance_after=row.r_balance_after,
            type=row.r_type,
            reference_id=row.r_reference_id,
            description=row.r_description,
            created_at=row.r_created_at,
        )
        return Posted(transaction, balance, replayed=row.r_outcome == "replayed")

    async def page(
        self, human_id: str, *, after: list[Any] | None, count: int
    ) -> list[TransactionRecord]:
        """The human's rows, newest first, after the key [created_at ISO, id]."""
        query = select(token_ledger).where(token_ledger.c.human_id == uuid.UUID(human_id))
        if after is not None:
            created, last = datetime.fromisoformat(after[0]), uuid.UUID(after[1])
            query = query.where(
                or_(
                    token_ledger.c.created_at < created,
                    and_(token_ledger.c.created_at == created, token_ledger.c.id < last),
                )
            )
        query = query.order_by(token_ledger.c.created_at.desc(), token_ledger.c.id.desc())
        async with self._db.connect() as conn:
            rows = (await conn.execute(query.limit(count))).all()
        return [_transaction(row) for row in rows]

    async def check(self, *, at_most: int = 100) -> LedgerCheck:
        """Every cached balance against the sum of its ledger rows (read in one snapshot)."""
        sums = (
            select(
                token_ledger.c.human_id,
                func.sum(token_ledger.c.amount).label("ledger_sum"),
            )
            .group_by(token_ledger.c.human_id)
            .subquery()
        )
        drifting = (
            select(
                token_balances.c.human_id,
                token_balances.c.balance,
                func.coalesce(sums.c.ledger_sum, 0).label("ledger_sum"),
            )
            .select_from(
                token_balances.outerjoin(sums, sums.c.human_id == token_balances.c.human_id)
            )
            .where(token_balances.c.balance != func.coalesce(sums.c.ledger_sum, 0))
            .limit(at_most)
        )
        async with self._db.engine.connect() as conn:
            # One snapshot for all the reads, so movements meanwhile cannot look like drift.
            await conn.execution_options(isolation_level="REPEATABLE READ")
            async with conn.begin():
                drifts = [
                    Drift(str(r.human_id), int(r.balance), int(r.ledger_sum))
                    for r in (await conn.execute(drifting)).all()
                ]
                balances, outstanding = (
                    await conn.execute(
                        select(
                            func.count(), func.coalesce(func.sum(token_balances.c.balance), 0)
                        ).select_from(token_balances)
                    )
                ).one()
                transactions = (
                    await conn.execute(select(func.count()).select_from(token_ledger))
                ).scalar_one()
                now = (await conn.execute(select(func.now()))).scalar_one()
        return LedgerCheck(int(balances), int(transactions), int(outstanding), tuple(drifts), now)

    async def earned_since(self, since: datetime) -> int:
        """Tokens paid to humans (every EARN_* movement) at or after `since`."""
        statement = select(func.coalesce(func.sum(token_ledger.c.amount), 0)).where(
            token_ledger.c.type.in_(EARN_TYPES), token_ledger.c.created_at >= since
        )
        async with self._db.connect() as conn:
            return int((await conn.execute(statement)).scalar_one())
