"""Verification emails leave the outbox through a real SMTP server, exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from betterworld.agent.v1 import agent_pb2 as pb
from sqlalchemy import select

from services.core.mail import OutboxDispatcher, SmtpConfig, email_outbox
from tests.support.agents import register
from tests.support.helpers import RunningService, bearer
from tooling.devstack import free_port


@dataclass
class Inbox:
    """Messages a local SMTP server accepted."""

    messages: list[Any] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


async def test_outbox_is_delivered_by_smtp_once(
    agent_service: RunningService, smtp_server: tuple[Inbox, int]
) -> None:
    inbox, port = smtp_server
    reg = await register(agent_service, "mailed", email="mailed@example.org")
    await agent_service.agents.RequestVerification(
        pb.RequestVerificationRequest(), metadata=bearer(reg.api_key)
    )
    dispatcher = OutboxDispatcher(
        agent_service.runtime.engine,
        SmtpConfig(host="127.0.0.1", port=port, username=None, password=None, sender="bw@x.org"),
        log_bodies=False,
    )
    assert await dispatcher.send_pending() == 1
    assert await dispatcher.send_pending() == 0
    assert len(inbox.messages) == 1
    message = inbox.messages[0]
    assert message["To"] == "mailed@example.org"
    assert "verification code" in message.get_payload()
    async with agent_service.runtime.engine.connect() as conn:
        sent_at = (await conn.execute(select(email_outbox.c.sent_at))).scalar_one()
    assert sent_at is not None


async def test_unreachable_smtp_keeps_the_email_for_later(agent_service: RunningService) -> None:
    reg = await register(agent_service, "unmailed", email="later@example.org")
    await agent_service.agents.RequestVerification(
        pb.RequestVerificationRequest(), metadata=bearer(reg.api_key)
    )
    dead = SmtpConfig(
        host="127.0.0.1",
        port=free_port(),
        username=None,
        password=None,
        sender="bw@x.org",
        timeout_seconds=1,
    )
    dispatcher = OutboxDispatcher(agent_service.runtime.engine, dead, log_bodies=False)
    assert await dispatcher.send_pending() == 0
    async with agent_service.runtime.engine.connect() as conn:
        sent_at = (await conn.execute(select(email_outbox.c.sent_at))).scalar_one()
    assert sent_at is None
