"""Fixtures for in-process services on port 0 over the session's real databases."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest

from services.agent.definition import DEFINITION
from services.core.credentials import store as credentials
from services.core.credentials.keys import OPERATOR_KEY_PREFIX, generate_key
from services.core.settings import Settings
from tests.support.helpers import RunningService, start_service


@pytest.fixture
async def agent_service(settings: Settings, clean_state: None) -> AsyncIterator[RunningService]:
    """The agent service in-process on a free port (outbox delivery left to the tests)."""
    service = await start_service(dataclasses.replace(DEFINITION, background=None), settings)
    try:
        yield service
    finally:
        await service.stop()


@pytest.fixture
async def operator_key(agent_service: RunningService) -> str:
    """An operator API key named "ops-test"."""
    key = generate_key(OPERATOR_KEY_PREFIX)
    await credentials.create_operator(
        agent_service.runtime.engine,
        name="ops-test",
        digest=key.digest,
        display_prefix=key.display_prefix,
    )
    return key.plaintext
