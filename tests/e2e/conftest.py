"""The e2e stack: the session's PostgreSQL and Valkey, an agent service subprocess, real Envoy.

One stack serves the whole session with rate limits raised far above what the tests send, so
that no test is throttled by another; the limits themselves are tested on dedicated stacks
(`test_resilience.py`) or with a per-agent override set by an operator.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.core.settings import Settings
from services.mission.definition import DEFINITION as MISSION
from tests.support import e2e_http as support
from tests.support.e2e_stack import (
    _LIVE,
    HIGH_LIMITS,
    Stack,
    create_operator_key,
    envoy_in_front,
    redis_db,
    start_stack,
    track,
    untrack,
)
from tests.support.helpers import RunningService, start_service
from tooling.devstack import EmbeddedPostgres, EmbeddedValkey


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed and "tests/e2e" in str(item.path).replace("\\", "/"):
        for stack in _LIVE:
            report.sections.append(("e2e stack logs", stack.logs(40)))


@pytest.fixture(scope="session")
def e2e_stack(
    postgres: EmbeddedPostgres,
    valkey: EmbeddedValkey,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """The agent service subprocess behind real Envoy, on the session's databases."""
    stack = start_stack(
        database_url=postgres.url,
        redis_url=redis_db(valkey.url, 3),
        work_dir=tmp_path_factory.mktemp("e2e-stack"),
        extra_env=HIGH_LIMITS,
    )
    track(stack)
    try:
        yield stack
    finally:
        untrack(stack)
        stack.stop()


@pytest.fixture
def http(e2e_stack: Stack) -> Iterator[httpx.Client]:
    """An HTTP/1.1 client for Envoy's port."""
    e2e_stack.check_alive()
    with httpx.Client(base_url=e2e_stack.base_url, timeout=10) as client:
        yield client


@pytest.fixture
def operator_key(e2e_stack: Stack) -> str:
    """An operator API key valid on the e2e stack, made for each test: the stack shares the
    session's database, which fixtures such as `clean_state` empty between tests."""
    return create_operator_key(e2e_stack.database_url)


@pytest.fixture
def new_agent(http: httpx.Client) -> Callable[..., dict[str, Any]]:
    """Registers an agent with a unique username; returns the 201 body plus `auth` headers."""

    def make(prefix: str = "e2e", **fields: Any) -> dict[str, Any]:
        return support.register(http, prefix, **fields)

    return make


@pytest.fixture
async def mission_edge(
    mission_settings: Settings, clean_state: None, tmp_path: Path
) -> AsyncIterator[tuple[RunningService, httpx.AsyncClient]]:
    """The mission service (rate limits on) in-process, behind real Envoy."""
    settings = mission_settings.model_copy(update={"rate_limit_enabled": True})
    service = await start_service(dataclasses.replace(MISSION, background=None), settings)
    try:
        async with envoy_in_front({"mission": service.server.port}, tmp_path / "envoy") as http:
            yield service, http
    finally:
        await service.stop()
