"""`migrate generate --autogenerate` against a real database at head, into a copy of the
migrations: it writes nothing to do while the services' tables and the migrations agree (a drift
check), and the missing operation when the database lacks something the tables declare."""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from services.core.migrate import generate_revision, upgrade
from services.ops.backup import libpq_url
from tests.support.databases import scratch_database
from tooling.devstack import EmbeddedPostgres

REAL = Path(__file__).resolve().parents[3] / "migrations"


@pytest.fixture
def at_head(postgres: EmbeddedPostgres) -> Iterator[str]:
    with scratch_database(postgres, "bw_autogen") as url:
        upgrade(url)
        yield url


@pytest.fixture
def migrations(tmp_path: Path) -> Path:
    copy = tmp_path / "migrations"
    shutil.copytree(REAL, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


LOCK_TIMEOUT = "op.execute(\"SET lock_timeout = '5s'\")"


def _operations(revision: Path) -> list[str]:
    """The schema operations of a revision's upgrade, after the lock timeout every new revision
    sets first (squawk requires it)."""
    upgrade_body = revision.read_text().split("def upgrade() -> None:")[1].split("def downgrade")[0]
    assert LOCK_TIMEOUT in upgrade_body, upgrade_body
    return re.findall(r"op\.\w+\(", upgrade_body.replace(LOCK_TIMEOUT, "", 1))


def test_the_tables_and_the_migrations_agree(at_head: str, migrations: Path) -> None:
    written = generate_revision("check drift", directory=migrations, database_url=at_head)
    assert _operations(written) == []


def test_autogenerate_writes_what_the_database_lacks(at_head: str, migrations: Path) -> None:
    async def drop() -> None:
        conn = await asyncpg.connect(libpq_url(at_head))
        try:
            await conn.execute("ALTER TABLE humans DROP COLUMN display_name")
        finally:
            await conn.close()

    asyncio.run(drop())
    written = generate_revision("restore display name", directory=migrations, database_url=at_head)
    assert _operations(written) == ["op.add_column("]
    assert "'display_name'" in written.read_text() or '"display_name"' in written.read_text()
