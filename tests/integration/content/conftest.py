"""Fixtures for the content service: in-process on port 0, agents with keys, decisions."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from services.content.definition import DEFINITION
from services.core.settings import Settings
from services.guardrail.classifier.local import LocalClassifier
from tests.support.content import ContentClient, RunningWorker, start_worker
from tests.support.helpers import start_service


@pytest.fixture
def content_settings(settings: Settings) -> Settings:
    """Limits raised so tests that create a lot are not rate limited (one test checks them)."""
    return settings.model_copy(
        update={"rate_limit_agent_verified": 10_000, "rate_limit_public_per_ip": 10_000}
    )


@pytest.fixture
async def content(content_settings: Settings, clean_state: None) -> AsyncIterator[ContentClient]:
    """The content service in-process on a free port."""
    service = await start_service(dataclasses.replace(DEFINITION), content_settings)
    try:
        yield ContentClient(service, content_settings)
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
