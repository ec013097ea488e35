"""The mission service's store: humans, their verification codes and (through core's
credentials) their login sessions, as frozen records (`HumanStore`)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, case, delete, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError

from services.core import mail
from services.core.codes import CodeTable, VerificationCode
from services.core.credentials import sessions
from services.core.credentials.sessions import Rotation
from services.core.ids import parse_uuid
from services.core.store import SqlStore
from services.mission.model import HumanRecord, LoginState, NewHuman
from services.mission.tables import human_verification_codes, humans, login_failures

EMAIL_UNIQUE_INDEX = "uq_humans_email_lower"
_CODES = CodeTable(human_verification_codes, human_verification_codes.c.human_id)
_COLUMNS = [c for c in humans.c if c.name != "password_hash"]
_BY_ID = select(*_COLUMNS).where(humans.c.id == bindparam("human_id"))


class EmailTaken(Exception):
    """Another human registered this email (in any letter case)."""


def _record(row: Row[Any]) -> HumanRecord:
    return HumanRecord(
        id=str(row.id),
        email=row.email,
        display_name=row.display_name,
        email_verified=row.email_verified_at is not None,
        is_active=row.is_active,
        created_at=row.created_at,
    )


class HumanStore(SqlStore):
    """Humans and what belongs to them. Ids are strings; a malformed one finds nothing."""

    async def insert(self, new: NewHuman, *, password_hash: str) -> HumanRecord:
        """A new, unverified human; EmailTaken when the email is (also under a race)."""
        try:
            async with self._db.connect() as conn:
                row = (
                    await conn.execute(
                        insert(humans)
                        .values(
                            email=new.email,
                            password_hash=password_hash,
                            display_name=new.display_name,
                        )
                        .returning(*_COLUMNS)
                    )
                ).one()
        except IntegrityError as exc:
            if EMAIL_UNIQUE_INDEX in str(exc.orig):
                raise EmailTaken(new.email) from None
            raise
        return _record(row)

    async def get(self, human_id: str, *, lock: bool = False) -> HumanRecord | None:
        """One human, or None; `lock` holds the row until the transaction ends."""
        parsed = parse_uuid(human_id)
        if parsed is None:
            return None
        query = _BY_ID.with_for_update() if lock else _BY_ID
        async with self._db.connect() as conn:
            row = (await conn.execute(query, {"human_id": parsed})).first()
        return _record(row) if row else None

    async def login_state(self, email: str, *, lock: bool = False) -> LoginState | None:
        """The human with this email (any letter case) and their password hash, or None;
        `lock` holds the row until the transaction ends."""
        query = select(humans).where(func.lower(humans.c.email) == email.lower())
        if lock:
            query = query.with_for_update()
        async with self._db.connect() as conn:
            row = (await conn.execute(query)).first()
        return LoginState(_record(row), row.password_hash) if row else None

    async def login_locked_until(self, email: str) -> datetime | None:
        """Until when logins for this email are refused, if they are now."""
        async with self._db.connect() as conn:
            return (
                await conn.execute(
                    select(login_failures.c.locked_until)
                    .where(login_failures.c.email_key == email.lower())
                    .where(login_failures.c.locked_until > func.now())
                )
            ).scalar_one_or_none()

    async def record_login_failure(
        self, email: str, *, lock_after: int, lock_for: timedelta
    ) -> datetime | None:
        """Counts a failed login for the email; the `lock_after`-th in a row (failures older
        than `lock_for` are forgotten) locks it for `lock_for`. Returns the new lock, if any."""
        key = email.lower()
        stale = login_failures.c.updated_at < func.now() - lock_for
        upsert = (
            pg_insert(login_failures)
            .values(email_key=key, failures=1)
            .on_conflict_do_update(
                index_elements=[login_failures.c.email_key],
                set_={
                    "failures": case((stale, 1), else_=login_failures.c.failures + 1),
                    "updated_at": func.now(),
                },
            )
            .returning(login_failures.c.failures)
        )
        async with self._db.atomic() as conn:
            failures = (await conn.execute(upsert)).scalar_one()
            if failures < lock_after:
                return None
            return (
                await conn.execute(
                    update(login_failures)
                    .where(login_failures.c.email_key == key)
                    .values(failures=0, locked_until=func.now() + lock_for)
                    .returning(login_failures.c.locked_until)
                )
            ).scalar_one()

    async def clear_login_failures(self, email: str) -> None:
        """A successful login: the count starts again."""
        async with self._db.connect() as conn:
            await conn.execute(
                delete(login_failures).where(login_failures.c.email_key == email.lower())
            )

    async def mark_verified(self, human_id: str) -> HumanRecord | None:
        """The email is confirmed."""
        return await self._update(human_id, {"email_verified_at": func.now()})

    async def set_active(self, human_id: str, active: bool) -> HumanRecord | None:
        """Deactivates or reactivates; None when there is no such human."""
        return await self._update(human_id, {"is_active": active})

    async def _update(self, human_id: str, values: dict[str, Any]) -> HumanRecord | None:
        parsed = parse_uuid(human_id)
        if parsed is None:
            return None
        statement = (
            update(humans)
            .where(humans.c.id == parsed)
            .values(**values, updated_at=func.now())
            .returning(*_COLUMNS)
        )
        async with self._db.connect() as conn:
            row = (await conn.execute(statement)).first()
        return _record(row) if row else None

    async def page(self, *, after: list[Any] | None, count: int) -> list[HumanRecord]:
        """Up to `count` humans after the key `[created_at ISO, id]`, newest first."""
        query = select(*_COLUMNS)
        if after is not None:
            created, last = datetime.fromisoformat(after[0]), uuid.UUID(after[1])
            query = query.where(
                or_(
                    humans.c.created_at < created,
                    and_(humans.c.created_at == created, humans.c.id < last),
                )
            )
        query = query.order_by(humans.c.created_at.desc(), humans.c.id.desc()).limit(count)
        async with self._db.connect() as conn:
            return [_record(row) for row in (await conn.execute(query)).all()]

    async def add_code(self, human_id: str, digest: bytes, expires_at: datetime) -> None:
        """Stores a new code and voids the human's older unused ones."""
        async with self._db.atomic() as conn:
            await _CODES.add(conn, human_id, digest, expires_at)

    async def current_code(self, human_id: str) -> VerificationCode | None:
        """The human's newest unused code (read it under the human's lock)."""
        async with self._db.connect() as conn:
            return await _CODES.current(conn, human_id)

    async def record_failed_code(self, code_id: str, *, void: bool) -> None:
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

    async def start_session(
        self, *, session_id: str, human_id: str, refresh_jti: str, expires_at: datetime
    ) -> None:
        """Stores a new login session."""
        async with self._db.connect() as conn:
            await sessions.create(
                conn,
                session_id=session_id,
                human_id=human_id,
                refresh_jti=refresh_jti,
                expires_at=expires_at,
            )

    async def rotate_session(
        self, *, session_id: str, presented_jti: str, new_jti: str, expires_at: datetime
    ) -> Rotation:
        """Trades the session's refresh token (see `sessions.rotate`)."""
        async with self._db.atomic() as conn:
            return await sessions.rotate(
                conn,
                session_id=session_id,
                presented_jti=presented_jti,
                new_jti=new_jti,
                expires_at=expires_at,
            )

    async def end_session(self, session_id: str, *, reason: str) -> None:
        """Revokes a session."""
        async with self._db.connect() as conn:
            await sessions.revoke(conn, [session_id], reason=reason)

    async def set_sessions_active(self, human_id: str, active: bool) -> list[str]:
        """Marks the human's sessions (in)active; returns their ids."""
        async with self._db.connect() as conn:
            return await sessions.set_owner_active(conn, human_id, active)
