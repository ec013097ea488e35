"""`betterworld backup` and the snapshot `betterworld migrate` takes, as an operator runs them:
the settings choose the store (BACKUP_STORAGE=s3 against a real S3-compatible server here), and
the restore drill works through the command. The backups themselves are tested in
tests/ops/integration/test_backup.py."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from services.core.migrate import head_revision, upgrade
from services.ops.backup import Backups
from services.ops.backup_store import LocalBackupStore
from tests.support.databases import scratch_database
from tests.support.s3 import KEY, REGION, moto_s3
from tooling.backup import libpq_url
from tooling.devstack import EmbeddedPostgres

REPOSITORY = Path(__file__).parents[3]


@pytest.fixture
def drill_url(postgres: EmbeddedPostgres) -> Iterator[str]:
    """A migrated database of its own on the session's server."""
    with scratch_database(postgres, "bw_drill") as url:
        upgrade(url)
        yield url


def _cli(env: dict[str, str], *argv: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "tooling.cli", *argv],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPOSITORY,
    )
    if ok:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


async def _sql(url: str, statement: str) -> int:
    conn = await asyncpg.connect(libpq_url(url))
    try:
        return int(await conn.fetchval(statement) or 0)
    finally:
        await conn.close()


def test_the_backup_command_drills_a_restore_through_an_s3_bucket(
    drill_url: str, tmp_path: Path
) -> None:
    with moto_s3() as s3:
        bucket = s3.new_bucket()
        env = {
            "DATABASE_URL": drill_url,
            "DATA_DIR": str(tmp_path),
            "BACKUP_STORAGE": "s3",
            "BACKUP_BUCKET": bucket,
            "BACKUP_PREFIX": "prod/db",
            "S3_ENDPOINT_URL": s3.endpoint,
            "S3_REGION": REGION,
            "S3_ACCESS_KEY_ID": KEY,
            "S3_SECRET_ACCESS_KEY": KEY,
        }
        human = uuid.uuid4()
        asyncio.run(
            _sql(
                drill_url,
                "INSERT INTO humans (id, email, password_hash, display_name) "
                f"VALUES ('{human}', 'drill@example.org', 'x', 'H') RETURNING 1",
            )
        )
        created = _cli(env, "backup", "create", "--label", "drill").stdout
        assert created.startswith("created ") and "-drill:" in created
        listed = [json.loads(line) for line in _cli(env, "backup", "list").stdout.splitlines()]
        assert [b["name"].endswith("-drill") for b in listed] == [True]
        keys = [o["Key"] for o in s3.client().list_objects_v2(Bucket=bucket)["Contents"]]
        name = listed[0]["name"]
        assert sorted(keys) == [f"prod/db/{name}.dump", f"prod/db/{name}.json"]
        assert "restores to what its manifest says" in _cli(env, "backup", "verify").stdout

        asyncio.run(_sql(drill_url, "DELETE FROM humans RETURNING 1"))
        refused = _cli(env, "backup", "restore", ok=False)
        assert refused.returncode == 2 and "--yes" in refused.stderr
        assert _cli(env, "backup", "restore", "--yes").stdout.strip() == f"restored {name}"
        assert asyncio.run(_sql(drill_url, "SELECT count(*) FROM humans")) == 1
        assert _cli(env, "backup", "prune").stdout == ""  # today's backup is kept

        missing = _cli(env, "backup", "verify", "--name", "nope", ok=False)
        assert missing.returncode == 1 and f"s3://{bucket}/prod/db/" in missing.stderr


def test_migrate_takes_a_snapshot_before_every_schema_change(
    drill_url: str, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": drill_url, "DATA_DIR": str(tmp_path)}
    head = head_revision(drill_url)
    assert "upgrade pending" not in _cli(env, "migrate", "status").stdout
    assert "snapshot" not in _cli(env, "migrate").stdout  # nothing to change
    down = _cli(env, "migrate", "downgrade", "--revision", "-1").stdout
    assert "-pre-migrate taken" in down
    assert "upgrade pending" in _cli(env, "migrate", "status").stdout
    up = _cli(env, "migrate").stdout
    assert "-pre-migrate taken" in up and up.strip().endswith(f"to {head}")
    snapshots = asyncio.run(Backups(drill_url, LocalBackupStore(tmp_path / "backups")).all())
    assert [m.name.endswith("-pre-migrate") for m in snapshots] == [True, True]
    assert snapshots[0].schema_revision == head  # taken before going down
