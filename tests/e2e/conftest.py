"""The e2e stack: the session's PostgreSQL and Valkey, an agent service subprocess, real Envoy.

One stack serves the whole session with rate limits raised far above what the tests send, so
that no test is throttled by another; the limits themselves are tested on dedicated stacks
(`test_resilience.py`) or with a per-agent override set by an operator.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from services.core.credentials import store as credentials
from services.core.credentials.keys import OPERATOR_KEY_PREFIX, generate_key
from tests.e2e import support
from tests.e2e.stack import Stack, start_stack
from tooling.devstack import EmbeddedPostgres, EmbeddedValkey

# Far above anything the suite sends: throttling must come only from the tests that want it.
HIGH_LIMITS = {
    "RATE_LIMIT_AUTH_PER_IP": "100000",
    "RATE_LIMIT_PUBLIC_PER_IP": "100000",
    "RATE_LIMIT_AGENT_PENDING": "10000",
    "RATE_LIMIT_AGENT_VERIFIED": "10000",
}
PENDING_AGENT_LIMIT = 10000

_LIVE: list[Stack] = []
"""Stacks running now; their log tails are attached to the report of a failing test."""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed and "tests/e2e" in str(item.path).replace("\\", "/"):
        for stack in _LIVE:
            report.sections.append(("e2e stack logs", stack.logs(40)))


def track(stack: Stack) -> Stack:
    """Registers a running stack so failures show its logs."""
    _LIVE.append(stack)
    return stack


def untrack(stack: Stack) -> None:
    if stack in _LIVE:
        _LIVE.remove(stack)


def redis_db(url: str, db: int) -> str:
    """The same Valkey, another logical database (separate rate-limit buckets and caches)."""
    base, _, _ = url.rpartition("/")
    return f"{base}/{db}"


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


def create_operator_key(database_url: str, name: str = "ops-e2e") -> str:
    """A new operator API key (as `betterworld operator create-key` makes one)."""

    async def create() -> str:
        engine = create_async_engine(database_url)
        try:
            key = generate_key(OPERATOR_KEY_PREFIX)
            await credentials.create_operator(
                engine, name=name, digest=key.digest, display_prefix=key.display_prefix
            )
            return key.plaintext
        finally:
            await engine.dispose()

    return asyncio.run(create())


@pytest.fixture(scope="session")
def operator_key(e2e_stack: Stack) -> str:
    """An operator API key valid on the e2e stack."""
    return create_operator_key(e2e_stack.database_url)


@pytest.fixture
def new_agent(http: httpx.Client) -> Callable[..., dict[str, Any]]:
    """Registers an agent with a unique username; returns the 201 body plus `auth` headers."""

    def make(prefix: str = "e2e", **fields: Any) -> dict[str, Any]:
        return support.register(http, prefix, **fields)

    return make
