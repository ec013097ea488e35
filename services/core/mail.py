"""Email: the outbox every service writes to in its own transaction, and the dispatcher that
delivers it by SMTP when configured, else to the log (development only)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from email.message import EmailMessage

import aiosmtplib
from sqlalchemy import Column, DateTime, String, Table, Text, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.core.db import metadata
from services.core.logging import get_logger
from services.core.settings import Settings

log = get_logger(__name__)
_BATCH = 20

email_outbox = Table(
    "email_outbox",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")),
    Column("recipient", String(254), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("sent_at", DateTime(timezone=True)),
)


async def enqueue_email(conn: AsyncConnection, *, recipient: str, subject: str, body: str) -> None:
    """Adds an email to the outbox in the caller's transaction: it is sent only if that commits."""
    await conn.execute(insert(email_outbox).values(recipient=recipient, subject=subject, body=body))


@dataclass(frozen=True)
class SmtpConfig:
    """Where and as whom to send."""

    host: str
    port: int
    username: str | None
    password: str | None
    sender: str
    timeout_seconds: float = 10.0


class OutboxDispatcher:
    """Sends unsent outbox rows; a row is marked sent only after the server accepted it.

    Rows are claimed with FOR UPDATE SKIP LOCKED, so several service processes can run a
    dispatcher each without sending an email twice.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        smtp: SmtpConfig | None,
        *,
        log_bodies: bool,
        interval_seconds: float = 2.0,
    ) -> None:
        self._engine = engine
        self._smtp = smtp
        self._log_bodies = log_bodies
        self._interval = interval_seconds

    async def _deliver(self, recipient: str, subject: str, body: str) -> None:
        if self._smtp is None:
            if self._log_bodies:
                # Development without SMTP: the log is the mailbox.
                log.info("email_delivered_to_log", to=recipient, subject=subject, body=body)
            return
        message = EmailMessage()
        message["From"] = self._smtp.sender
        message["To"] = recipient
        message["Subject"] = subject
        message.set_content(body)
        await aiosmtplib.send(
            message,
            hostname=self._smtp.host,
            port=self._smtp.port,
            username=self._smtp.username,
            password=self._smtp.password,
            start_tls=None,  # STARTTLS when the server offers it
            timeout=self._smtp.timeout_seconds,
        )

    async def send_pending(self) -> int:
        """Delivers up to one batch; returns how many were sent."""
        sent = 0
        async with self._engine.begin() as conn:
            rows = (
                await conn.execute(
                    select(email_outbox)
                    .where(email_outbox.c.sent_at.is_(None))
                    .order_by(email_outbox.c.created_at)
                    .limit(_BATCH)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            for row in rows:
                try:
                    await self._deliver(row.recipient, row.subject, row.body)
                except (aiosmtplib.SMTPException, OSError) as exc:
                    log.warning("email_delivery_failed", error=type(exc).__name__)
                    break  # keep the rest for the next round; the server may be down
                await conn.execute(
                    update(email_outbox)
                    .where(email_outbox.c.id == row.id)
                    .values(sent_at=func.now())
                )
                sent += 1
        return sent

    async def run(self) -> None:
        """Delivers forever, every `interval_seconds`; cancelled on shutdown."""
        while True:
            try:
                await self.send_pending()
            except Exception:  # a database outage must not end delivery for good
                log.warning("email_outbox_unavailable")
            await asyncio.sleep(self._interval)


def build_dispatcher(settings: Settings, engine: AsyncEngine) -> OutboxDispatcher:
    """The outbox dispatcher: SMTP when SMTP_HOST is set, else the log (development only)."""
    smtp = (
        SmtpConfig(
            host=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            sender=settings.smtp_from,
        )
        if settings.smtp_host
        else None
    )
    return OutboxDispatcher(engine, smtp, log_bodies=settings.environment == "development")
