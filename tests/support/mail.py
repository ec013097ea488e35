"""Reading verification codes from the email outbox, as a user reads their mailbox."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.core.mail import email_outbox


async def last_code(engine: AsyncEngine, recipient: str) -> str:
    """The 6-digit code in the newest email to `recipient`."""
    async with engine.connect() as conn:
        body = (
            await conn.execute(
                select(email_outbox.c.body)
                .where(email_outbox.c.recipient == recipient)
                .order_by(email_outbox.c.created_at.desc())
                .limit(1)
            )
        ).scalar_one()
    match = re.search(r"\b(\d{6})\b", body)
    assert match, body
    return match.group(1)
