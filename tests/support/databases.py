"""Scratch databases on the session's PostgreSQL, for tests that migrate, restore or drop."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg
from sqlalchemy import make_url

from tooling.backup import libpq_url
from tooling.devstack import EmbeddedPostgres


async def _admin(postgres: EmbeddedPostgres, statement: str) -> None:
    conn = await asyncpg.connect(libpq_url(postgres.url))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@contextmanager
def scratch_database(postgres: EmbeddedPostgres, prefix: str) -> Iterator[str]:
    """An empty database of its own (its SQLAlchemy URL), dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    url = make_url(postgres.url).set(database=name).render_as_string(hide_password=False)
    asyncio.run(_admin(postgres, f'CREATE DATABASE "{name}"'))
    try:
        yield url
    finally:
        asyncio.run(_admin(postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
