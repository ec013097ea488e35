"""Session-wide real dependencies: one embedded PostgreSQL and one Valkey for the whole run."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from services.core.migrate import upgrade
from services.registry import REGISTRY
from services.schema import collect
from tooling.devstack import EmbeddedPostgres, EmbeddedValkey, free_port

Settings = REGISTRY.settings_type()
pytest_plugins = ["tests.support.fixtures"]

_OWN_BASETEMP = pytest.StashKey[Path]()


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Temporary directories of this run under a directory of its own, unless --basetemp says.

    pytest's default base, /tmp/pytest-of-USER, has its group and other permissions removed by
    every pytest session that starts, and with them the ACL entry through which the embedded
    PostgreSQL's account reaches its data directory: a second run started meanwhile would break
    this one.
    """
    if config.option.basetemp is None:
        parent = Path(tempfile.gettempdir()) / f"betterworld-tests-{os.getuid()}"
        parent.mkdir(mode=0o700, exist_ok=True)
        own = Path(tempfile.mkdtemp(prefix="run-", dir=parent))
        config.option.basetemp = str(own)
        config.stash[_OWN_BASETEMP] = own


def pytest_unconfigure(config: pytest.Config) -> None:
    own = config.stash.get(_OWN_BASETEMP, None)
    if own is not None:
        shutil.rmtree(own, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    """A migrated PostgreSQL on a free port, stopped at the end of the session."""
    server = EmbeddedPostgres(tmp_path_factory.mktemp("pg") / "data", port=free_port())
    server.start()
    try:
        upgrade(server.url)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def valkey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedValkey]:
    """A Valkey with AOF on a free port, stopped at the end of the session."""
    server = EmbeddedValkey(tmp_path_factory.mktemp("valkey"), port=free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def settings(postgres: EmbeddedPostgres, valkey: EmbeddedValkey, tmp_path: Path) -> Settings:
    """Settings pointing at the session's databases, with no .env influence."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=postgres.url,
        redis_url=valkey.url,
        data_dir=tmp_path,
        agent_port=0,
        metrics_port_agent=0,
        health_check_interval_seconds=0.5,
        grace_seconds=5,
        # The test process itself keeps the machine busy; workers in tests do not defer jobs
        # unless a test is about that.
        worker_defer_seconds=0,
    )


@pytest.fixture
async def clean_state(postgres: EmbeddedPostgres, valkey: EmbeddedValkey) -> AsyncIterator[None]:
    """Every test starts with empty tables and an empty Valkey."""
    engine = create_async_engine(postgres.url)
    tables = ", ".join(t.name for t in collect().sorted_tables)
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {tables} CASCADE"))
    await engine.dispose()
    redis = Redis.from_url(valkey.url)
    await redis.flushall()
    await redis.aclose()
    yield
