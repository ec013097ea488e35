"""Applies Alembic migrations programmatically (used by `betterworld migrate`, `up` and tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

_PACKAGED = Path(__file__).resolve().parents[1] / "migrations"
"""Where the wheel carries the migrations (`services/migrations`, see pyproject's force-include)."""
_SOURCE_TREE = Path(__file__).resolve().parents[2] / "migrations"


def migrations_dir() -> Path:
    """The migration scripts: inside the installed package, else in the source tree."""
    return _PACKAGED if _PACKAGED.is_dir() else _SOURCE_TREE


def alembic_config(database_url: str) -> Config:
    """An Alembic config for the migrations and the given database, built in code: an installed
    wheel has no alembic.ini (the repository's is for `alembic` run by hand)."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.set_main_option("file_template", "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s")
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
