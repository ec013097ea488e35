"""Applies, renders and starts Alembic migrations (used by `betterworld migrate`, `up`, the
migration lint and tests)."""

from __future__ import annotations

import io
import sys
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

_PACKAGED = Path(__file__).resolve().parents[1] / "migrations"
"""Where the wheel carries the migrations (`services/migrations`, see pyproject's force-include)."""
_SOURCE_TREE = Path(__file__).resolve().parents[2] / "migrations"
OFFLINE_URL = "postgresql+asyncpg://offline@localhost/offline"
"""Rendering SQL needs a dialect, not a server."""


class MigrationError(Exception):
    """A migration command cannot do what was asked (the message says why)."""


def migrations_dir() -> Path:
    """The migration scripts: inside the installed package, else in the source tree."""
    return _PACKAGED if _PACKAGED.is_dir() else _SOURCE_TREE


def alembic_config(database_url: str, *, directory: Path | None = None) -> Config:
    """An Alembic config for the migrations (or those in `directory`) and the given database,
    built in code: an installed wheel has no alembic.ini (the repository's is for `alembic` run
    by hand)."""
    config = Config()
    config.set_main_option("script_location", str(directory or migrations_dir()))
    config.set_main_option("file_template", "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s")
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Migrates the database to `revision` (synchronous; runs its own event loop)."""
    command.upgrade(alembic_config(database_url), revision)


def head_revision(database_url: str = OFFLINE_URL, *, directory: Path | None = None) -> str:
    """The newest revision of the migrations."""
    script = ScriptDirectory.from_config(alembic_config(database_url, directory=directory))
    head = script.get_current_head()
    if head is None:
        raise MigrationError("the migrations have no revision")
    return head


def downgrade(database_url: str, revision: str) -> None:
    """Migrates the database down to `revision`."""
    command.downgrade(alembic_config(database_url), revision)


def revisions_after(baseline: str, *, directory: Path | None = None) -> list[tuple[str, str]]:
    """(previous, revision) of every revision newer than `baseline`, oldest first."""
    script = ScriptDirectory.from_config(alembic_config(OFFLINE_URL, directory=directory))
    newer = list(script.iterate_revisions("heads", baseline))
    steps = []
    for revision in reversed(newer):
        previous = revision.down_revision or "base"
        if not isinstance(previous, str):
            raise MigrationError(f"revision {revision.revision} merges branches: lint it by hand")
        steps.append((previous, revision.revision))
    return steps


def upgrade_sql(previous: str, revision: str, *, directory: Path | None = None) -> str:
    """The SQL `upgrade` would run to go from `previous` to `revision` (offline: no server)."""
    config = alembic_config(OFFLINE_URL, directory=directory)
    out = io.StringIO()
    config.output_buffer = out
    command.upgrade(config, f"{previous}:{revision}", sql=True)
    return out.getvalue()


def generate_revision(
    message: str, *, directory: Path | None = None, database_url: str | None = None
) -> Path:
    """Writes a new revision after the head, numbered like the others (`0015`, …) and named
    `<date>_<number>_<slug>.py`; returns its path.

    Blank unless `database_url` is given: then Alembic compares that database (at head) with
    the services' tables and writes the operations it finds, to be reviewed by hand. Revisions
    are written into a source checkout (`migrations/` of the repository, or `directory`); an
    installed package's migrations are part of its release and are never written to.
    """
    target = directory or _SOURCE_TREE
    if not target.is_dir():
        raise MigrationError(
            f"no migrations directory at {target}: `migrate generate` writes into a source "
            "checkout (run it from the repository, or pass --directory)"
        )
    script = ScriptDirectory.from_config(alembic_config(OFFLINE_URL, directory=target))
    heads = script.get_heads()
    if len(heads) > 1:
        raise MigrationError(f"several heads ({', '.join(heads)}): merge them first")
    numbers = [int(r.revision) for r in script.walk_revisions() if r.revision.isdigit()]
    rev_id = f"{max(numbers, default=0) + 1:04d}"
    config = alembic_config(database_url or OFFLINE_URL, directory=target)
    ruff = Path(sys.executable).parent / "ruff"
    if ruff.exists():  # a development install: the new file passes `ruff format --check`
        config.set_section_option("post_write_hooks", "hooks", "ruff_format")
        config.set_section_option("post_write_hooks", "ruff_format.type", "exec")
        config.set_section_option("post_write_hooks", "ruff_format.executable", str(ruff))
        config.set_section_option(
            "post_write_hooks", "ruff_format.options", "format REVISION_SCRIPT_FILENAME"
        )
    written = command.revision(
        config, message=message, autogenerate=database_url is not None, rev_id=rev_id
    )
    scripts = written if isinstance(written, list) else [written]
    if not scripts or scripts[0] is None:
        raise MigrationError("alembic wrote no revision")
    return Path(scripts[0].path)
