"""The restore drill on a real PostgreSQL: data loaded, backed up, destroyed, restored, compared;
a backup that does not restore to its manifest fails verification; retention keeps 30 days and
12 months."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from services.core.migrate import upgrade
from services.mission.ledger_store import LedgerStore
from services.mission.model import Movement
from tests.support.databases import scratch_database
from tooling.backup import Backups, Manifest, libpq_url
from tooling.devstack import EmbeddedPostgres


@pytest.fixture
def drill_url(postgres: EmbeddedPostgres) -> Iterator[str]:
    """A migrated database of its own on the session's server."""
    with scratch_database(postgres, "bw_drill") as url:
        upgrade(url)
        yield url


async def _load(url: str) -> None:
    """Humans with ledger movements: the money is what a restore must bring back exactly."""
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    conn = await asyncpg.connect(libpq_url(url))
    try:
        for n in range(20):
            human = uuid.uuid4()
            await conn.execute(
                "INSERT INTO humans (id, email, password_hash, display_name) "
                "VALUES ($1, $2, 'x', 'H')",
                human,
                f"drill{n}@example.org",
            )
            ledger = LedgerStore(engine)
            await ledger.post(Movement(str(human), 50 + n, "EARN_GRANT", "grant"))
            await ledger.post(Movement(str(human), -7, "SPEND_VOTE", f"spend-{n}"))
    finally:
        await conn.close()
        await engine.dispose()


async def _destroy(url: str) -> None:
    conn = await asyncpg.connect(libpq_url(url))
    try:
        await conn.execute("TRUNCATE token_ledger, token_balances, humans CASCADE")
    finally:
        await conn.close()


def test_load_back_up_destroy_restore_compare(drill_url: str, tmp_path: Path) -> None:
    asyncio.run(_load(drill_url))
    backups = Backups(drill_url, tmp_path / "backups")
    made = asyncio.run(backups.create(label="drill"))
    assert made.tables["humans"] == 20 and made.tables["token_ledger"] == 40
    assert made.schema_revision and made.ledger_checksum
    verified = asyncio.run(backups.verify())
    assert verified.ok, verified.differences

    asyncio.run(_destroy(drill_url))
    asyncio.run(backups.restore(made.name))
    after = asyncio.run(
        backups.create(label="after-restore", now=datetime.now(UTC) + timedelta(seconds=1))
    )
    assert after.tables == made.tables
    assert after.ledger_checksum == made.ledger_checksum


def test_a_backup_that_is_not_what_its_manifest_says_fails_verification(
    drill_url: str, tmp_path: Path
) -> None:
    asyncio.run(_load(drill_url))
    backups = Backups(drill_url, tmp_path / "backups")
    made = asyncio.run(backups.create())
    path = tmp_path / "backups" / f"{made.name}.json"
    lied = {**asdict(made), "tables": {**made.tables, "humans": 21}}
    path.write_text(json.dumps(lied))
    result = asyncio.run(backups.verify())
    assert not result.ok and "humans: 20 rows, the manifest says 21" in result.differences
    dump = tmp_path / "backups" / made.file
    dump.write_bytes(dump.read_bytes()[:-100])
    assert "SHA-256" in asyncio.run(backups.verify()).differences[0]


def test_retention_keeps_the_newest_of_30_days_and_12_months(tmp_path: Path) -> None:
    now = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
    backups = Backups("postgresql+asyncpg://x@127.0.0.1:1/x", tmp_path)
    tmp_path.mkdir(exist_ok=True)
    made = []
    for hours in range(0, 24 * 400, 12):  # two a day for 400 days
        when = now - timedelta(hours=hours)
        name = when.strftime("%Y%m%dT%H%M%SZ")
        manifest = Manifest(name, when.isoformat(), f"{name}.dump", 1, "x", "r", {}, "")
        (tmp_path / f"{name}.dump").write_bytes(b"x")
        (tmp_path / f"{name}.json").write_text(json.dumps(asdict(manifest)))
        made.append(manifest)
    backups.prune(now=now)
    kept = backups.all()
    days = [m.created.date() for m in kept if m.created.date() > now.date() - timedelta(days=30)]
    assert len(days) == len(set(days)) == 30  # the newest of each of the last 30 days
    months = [m.created.strftime("%Y-%m") for m in kept if m.created.date() not in days]
    assert len(set(months)) == len(months)  # one per older month
    assert {m.created.strftime("%Y-%m") for m in kept} == {f"2026-{mo:02d}" for mo in range(1, 13)}
    assert all((tmp_path / m.file).exists() for m in kept)
    assert len(list(tmp_path.glob("*.dump"))) == len(kept)


def _cli(url: str, data: Path, *argv: str) -> str:
    import os
    import subprocess
    import sys

    env = {**os.environ, "DATABASE_URL": url, "DATA_DIR": str(data)}
    done = subprocess.run(
        [sys.executable, "-m", "tooling.cli", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).parents[3],
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_migrate_takes_a_snapshot_before_every_schema_change(
    drill_url: str, tmp_path: Path
) -> None:
    from services.core.migrate import head_revision

    head = head_revision(drill_url)
    assert "upgrade pending" not in _cli(drill_url, tmp_path, "migrate", "status")
    assert "snapshot" not in _cli(drill_url, tmp_path, "migrate")  # nothing to change
    down = _cli(drill_url, tmp_path, "migrate", "downgrade", "--revision", "-1")
    assert "-pre-migrate taken" in down
    assert "upgrade pending" in _cli(drill_url, tmp_path, "migrate", "status")
    up = _cli(drill_url, tmp_path, "migrate")
    assert "-pre-migrate taken" in up and up.strip().endswith(f"to {head}")
    snapshots = Backups(drill_url, tmp_path / "backups").all()
    assert [m.name.endswith("-pre-migrate") for m in snapshots] == [True, True]
    assert snapshots[0].schema_revision == head  # taken before going down
