"""The command side of `betterworld backup` and of the snapshot `betterworld migrate` takes.

The backups themselves (dump, manifest, verify, restore, retention, the local and S3 stores) are
`services.ops.backup`, which the worker's schedule runs too; this module builds them from the
settings and shapes what the command prints.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from services.core.settings import Settings
from services.ops.backup import PRE_MIGRATION_LABEL, Backups, Manifest, libpq_url
from services.ops.backup_store import open_backup_store
from services.ops.errors import BackupError

__all__ = [
    "PRE_MIGRATION_LABEL",
    "BackupError",
    "Backups",
    "Manifest",
    "backups_for",
    "current_revision",
    "describe",
    "libpq_url",
]


def backups_for(settings: Settings) -> Backups:
    """The database's backups in the store the settings name (BACKUP_STORAGE)."""
    return Backups(settings.database_url, open_backup_store(settings))


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
