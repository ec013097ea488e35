"""Applies Alembic migrations programmatically (used by `betterworld migrate`, `up` and tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

_ROOT = Path(__file__).resolve().parents[2]


def alembic_config(database_url: str) -> Config:
    """An Alembic config pointing at this repository's migrations and the given database."""
    config = Config(str(_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(_ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Migrates the database to `revision` (synchronous; runs its own event loop)."""
    command.upgrade(alembic_config(database_url), revision)


def head_revision(database_url: str) -> str:
    """The newest revision of this repository's migrations."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()
    assert head is not None
    return head


def downgrade(database_url: str, revision: str) -> None:
    """Migrates the database down to `revision`."""
    command.downgrade(alembic_config(database_url), revision)
