"""Fixtures for in-process services on port 0 over the session's real databases: the agent,
content and mission services, an operator key, and an in-process worker (loaded by
tests/conftest.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from services.agent.definition import DEFINITION as AGENT
from services.content.definition import DEFINITION as CONTENT
from services.core.credentials import store as credentials
from services.core.credentials.keys import OPERATOR_KEY_PREFIX, generate_key
from services.core.settings import Settings
from services.guardrail.classifier.local import LocalClassifier
from services.mission.definition import DEFINITION as MISSION
from tests.support.content import ContentClient, RunningWorker, start_worker
from tests.support.evidence import EvidenceWorld
from tests.support.helpers import RunningService, start_service
from tests.support.humans import Humans
from tests.support.missions import MissionWorld


@pytest.fixture
async def agent_service(settings: Settings, clean_state: None) -> AsyncIterator[RunningService]:
    """The agent service in-process on a free port (outbox delivery left to the tests)."""
    service = await start_service(dataclasses.replace(AGENT, background=None), settings)
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


@pytest.fixture
def mission_settings(settings: Settings) -> Settings:
    """Cheap password hashes (a test checks the production parameters) and no rate limits:
    registrations and logins are limited per IP, and every test calls from 127.0.0.1 (a test
    checks the limits with them on)."""
    return settings.model_copy(
        update={
            "password_hash_time_cost": 1,
            "password_hash_memory_kib": 8 * 1024,
            "rate_limit_enabled": False,
        }
    )


@pytest.fixture
async def mission_service(
    mission_settings: Settings, clean_state: None
) -> AsyncIterator[RunningService]:
    """The mission service in-process on a free port (outbox delivery left to the tests)."""
    service = await start_service(dataclasses.replace(MISSION, background=None), mission_settings)
    try:
        yield service
    finally:
        await service.stop()


@pytest.fixture
def content_settings(settings: Settings) -> Settings:
    """Limits raised so tests that create a lot are not rate limited (one test checks them)."""
    return settings.model_copy(
        update={"rate_limit_agent_verified": 10_000, "rate_limit_public_per_ip": 10_000}
    )


@pytest.fixture
async def content(content_settings: Settings, clean_state: None) -> AsyncIterator[ContentClient]:
    """The content service in-process on a free port."""
    service = await start_service(dataclasses.replace(CONTENT), content_settings)
    try:
        yield ContentClient(service, content_settings)
    finally:
        await service.stop()


@pytest.fixture
async def mission_world(
    content: ContentClient, mission_settings: Settings
) -> AsyncIterator[MissionWorld]:
    """The content service and a mission service that asks it for solutions."""
    settings = mission_settings.model_copy(
        update={"content_internal_target": content.service.address}
    )
    service = await start_service(dataclasses.replace(MISSION, background=None), settings)
    try:
        yield MissionWorld(content, service, Humans(service))
    finally:
        await service.stop()


@pytest.fixture(scope="module")
def local_classifier() -> LocalClassifier:
    classifier = LocalClassifier()
    classifier.load()
    return classifier


@pytest.fixture
async def run_worker(
    content: ContentClient,
) -> AsyncIterator[Callable[..., Awaitable[RunningWorker]]]:
    started: list[RunningWorker] = []

    async def start(classifier: Any, **overrides: Any) -> RunningWorker:
        settings: Settings = content.settings.model_copy(
            update={"content_internal_target": content.service.address, **overrides}
        )
        started.append(await start_worker(settings, classifier))
        return started[-1]

    yield start
    for worker in started:
        await worker.stop()


@pytest.fixture
def evidence_world(mission_world: MissionWorld) -> EvidenceWorld:
    """The mission world with the evidence, peer review and dispute stubs."""
    return EvidenceWorld(mission_world)
