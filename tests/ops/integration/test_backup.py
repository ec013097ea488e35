"""Backups on a real PostgreSQL, in both stores (a local directory and a real S3-compatible
server): the restore drill (load, back up, destroy, restore, compare), verification catching a
backup that is not what its manifest says, retention (30 days, 12 months, 90 days of
pre-migration snapshots, dumps a failed backup left), large dumps sent in parts, and an
unreachable bucket failing cleanly."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from services.core.migrate import upgrade
from services.core.s3 import S3Location
from services.mission.ledger_store import LedgerStore
from services.mission.model import Movement
from services.ops.backup import Backups, Manifest, libpq_url
from services.ops.backup_store import BackupStore, LocalBackupStore, S3BackupStore
from services.ops.errors import BackupError
from tests.support.databases import scratch_database
from tests.support.s3 import KEY, REGION, S3Server, moto_s3
from tooling.devstack import EmbeddedPostgres, free_port

PREFIX = "nightly/"


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with moto_s3() as server:
        yield server


def s3_store(server: S3Server, work_dir: Path, **options: int) -> S3BackupStore:
    """A store in a bucket of its own on the moto server."""
    location = S3Location(
        bucket=server.new_bucket(),
        prefix=PREFIX,
        endpoint_url=server.endpoint,
        region=REGION,
        access_key_id=KEY,
        secret_access_key=KEY,
    )
    return S3BackupStore(location, work_dir, **options)


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BackupStore:
    if request.param == "local":
        return LocalBackupStore(tmp_path / "backups")
    return s3_store(request.getfixturevalue("s3"), tmp_path / "work")


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
        ledger = LedgerStore(engine)
        for n in range(20):
            human = uuid.uuid4()
            await conn.execute(
                "INSERT INTO humans (id, email, password_hash, display_name) "
                "VALUES ($1, $2, 'x', 'H')",
                human,
                f"drill{n}@example.org",
            )
            await ledger.post(Movement(str(human), 50 + n, "EARN_GRANT", "grant"))
            await ledger.post(Movement(str(human), -7, "SPEND_VOTE", f"spend-{n}"))
    finally:
        await conn.close()
        await engine.dispose()


async def _count(url: str, table: str) -> int:
    conn = await asyncpg.connect(libpq_url(url))
    try:
        return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
    finally:
        await conn.close()


async def _destroy(url: str) -> None:
    conn = await asyncpg.connect(libpq_url(url))
    try:
        await conn.execute("TRUNCATE token_ledger, token_balances, humans CASCADE")
    finally:
        await conn.close()


def _leftovers(store: BackupStore) -> list[str]:
    """Partial dumps and downloads in the work directory."""
    if not store.work_dir.exists():
        return []
    return [p.name for p in store.work_dir.iterdir() if p.name.startswith(".")]


async def test_load_back_up_destroy_restore_compare(drill_url: str, store: BackupStore) -> None:
    await _load(drill_url)
    backups = Backups(drill_url, store)
    made = await backups.create(label="drill")
    assert made.tables["humans"] == 20 and made.tables["token_ledger"] == 40
    assert made.schema_revision and made.ledger_checksum
    verified = await backups.verify()
    assert verified.ok, verified.differences

    await _destroy(drill_url)
    assert await _count(drill_url, "token_ledger") == 0
    restored = await backups.restore(made.name)
    assert restored == made
    assert await _count(drill_url, "token_ledger") == 40
    after = await backups.create(
        label="after-restore", now=datetime.now(UTC) + timedelta(seconds=1)
    )
    assert after.tables == made.tables
    assert after.ledger_checksum == made.ledger_checksum
    assert [m.name for m in await backups.all()] == [made.name, after.name]
    assert await store.names() == sorted(
        [made.file, f"{made.name}.json", after.file, f"{after.name}.json"]
    )
    assert _leftovers(store) == []


async def test_a_backup_that_is_not_what_its_manifest_says_fails_verification(
    drill_url: str, store: BackupStore
) -> None:
    await _load(drill_url)
    backups = Backups(drill_url, store)
    made = await backups.create()
    lied = {**asdict(made), "tables": {**made.tables, "humans": 21}}
    await store.put_text(f"{made.name}.json", json.dumps(lied))
    result = await backups.verify()
    assert not result.ok and "humans: 20 rows, the manifest says 21" in result.differences

    async with store.fetched(made.file) as path:
        cut = path.read_bytes()[:-100]
    partial = store.work_dir / ".cut"
    partial.write_bytes(cut)
    await store.put(made.file, partial, sha256=hashlib.sha256(cut).hexdigest())
    assert "SHA-256" in (await backups.verify()).differences[0]
    with pytest.raises(BackupError, match="SHA-256"):
        await backups.restore()
    assert await _count(drill_url, "humans") == 20  # nothing was restored from it

    await store.delete(made.file)
    assert (await backups.verify()).differences == [f"{made.file} is missing"]


async def _add(store: BackupStore, when: datetime, label: str = "daily") -> Manifest:
    """A backup as `create` would store it, at a time of the test's choosing."""
    name = f"{when.strftime('%Y%m%dT%H%M%SZ')}-{label}"
    manifest = Manifest(name, when.isoformat(), f"{name}.dump", 1, "x", "r", {}, "")
    store.work_dir.mkdir(parents=True, exist_ok=True)
    partial = store.work_dir / f".{name}"
    partial.write_bytes(b"x")
    await store.put(manifest.file, partial, sha256=hashlib.sha256(b"x").hexdigest())
    await store.put_text(f"{name}.json", json.dumps(asdict(manifest)))
    return manifest


async def _orphan(store: BackupStore, when: datetime) -> str:
    """A dump whose backup failed before its manifest was stored."""
    name = f"{when.strftime('%Y%m%dT%H%M%SZ')}-lost.dump"
    partial = store.work_dir / f".{name}"
    partial.write_bytes(b"y")
    await store.put(name, partial, sha256=hashlib.sha256(b"y").hexdigest())
    return name


async def test_retention_keeps_30_days_12_months_and_recent_pre_migration_snapshots(
    store: BackupStore,
) -> None:
    now = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
    backups = Backups("postgresql+asyncpg://x@127.0.0.1:1/x", store)
    async with store.connected():
        for day in range(40):  # two a day for 40 days
            for hour in (1, 13):
                await _add(store, now.replace(hour=hour) - timedelta(days=day + 1))
        await _add(store, now.replace(hour=2))  # today's
        for day in range(40, 400, 3):  # then one every three days
            await _add(store, now - timedelta(days=day))
        # Not the newest of their months (which the monthly retention would keep anyway).
        young_snapshot = await _add(store, now - timedelta(days=60, hours=12), "pre-migrate")
        old_snapshot = await _add(store, now - timedelta(days=100, hours=12), "pre-migrate")
        stale_orphan = await _orphan(store, now - timedelta(days=2))
        fresh_orphan = await _orphan(store, now - timedelta(hours=1))

    deleted = await backups.prune(now=now)
    kept = await backups.all()
    names = {m.name for m in kept}
    recent = [m for m in kept if m.created.date() > now.date() - timedelta(days=30)]
    days = [m.created.date() for m in recent if not m.name.endswith("pre-migrate")]
    assert len(days) == len(set(days)) == 30  # one for each of the last 30 days …
    assert all(m.created.hour in (2, 13) for m in recent)  # … the newest of its day
    older = [m for m in kept if m not in recent and not m.name.endswith("pre-migrate")]
    months = [m.created.strftime("%Y-%m") for m in older]
    assert len(months) == len(set(months))  # one for each older month
    assert {m.created.strftime("%Y-%m") for m in kept} == {f"2026-{mo:02d}" for mo in range(1, 13)}
    assert young_snapshot.name in names and old_snapshot.name not in names
    assert old_snapshot in deleted and not names & {m.name for m in deleted}
    stored = await store.names()
    assert stale_orphan not in stored and fresh_orphan in stored
    assert sorted(stored) == sorted(
        [m.file for m in kept] + [f"{m.name}.json" for m in kept] + [fresh_orphan]
    )


async def test_a_dump_larger_than_a_part_goes_up_in_parts(s3: S3Server, tmp_path: Path) -> None:
    store = s3_store(s3, tmp_path / "work", part_bytes=5 * 1024 * 1024)
    data = os.urandom(11 * 1024 * 1024)  # three parts
    source = tmp_path / "work" / ".big"
    source.parent.mkdir()
    source.write_bytes(data)
    await store.put("big.dump", source, sha256=hashlib.sha256(data).hexdigest())
    assert not source.exists()
    async with store.fetched("big.dump") as path:
        assert hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(data).digest()
    assert not path.exists()  # the download is removed afterwards
    listed = s3.client().list_objects_v2(Bucket=store.location.bucket)["Contents"]
    assert [(o["Key"], o["Size"]) for o in listed] == [(f"{PREFIX}big.dump", len(data))]
    assert s3.client().list_multipart_uploads(Bucket=store.location.bucket).get("Uploads") in (
        None,
        [],
    )


async def test_an_unreachable_bucket_fails_the_backup_cleanly(
    drill_url: str, tmp_path: Path
) -> None:
    location = S3Location(
        bucket="nowhere",
        prefix="backups/",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        region=REGION,
        access_key_id=KEY,
        secret_access_key=KEY,
    )
    store = S3BackupStore(location, tmp_path / "work", max_attempts=1)
    backups = Backups(drill_url, store)
    with pytest.raises(BackupError, match="s3://nowhere/backups/"):
        await backups.create()
    assert _leftovers(store) == []  # the dump made for it is gone
    with pytest.raises(BackupError):
        await backups.all()
