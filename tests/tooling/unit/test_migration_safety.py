"""New migrations: `migrate generate` writes a numbered revision into a copy of the migrations
without touching the real ones, and the squawk lint refuses the unsafe patterns (a required
column added to a table with rows, a blocking index build, a one-step drop, no lock timeout)
while the safe versions of the same changes pass."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from scripts.lint_migrations import BASELINE_REVISION, lint
from services.core import migrate
from services.core.migrate import MigrationError, generate_revision, head_revision
from tooling.cli import main as betterworld

REAL = Path(__file__).resolve().parents[3] / "migrations"


@pytest.fixture
def migrations(tmp_path: Path) -> Path:
    """A copy of the repository's migrations."""
    copy = tmp_path / "migrations"
    shutil.copytree(REAL, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def _listing(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*.py"))
        if "__pycache__" not in p.parts
    }


def test_generate_writes_the_next_numbered_revision_into_the_given_directory(
    migrations: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _listing(REAL)
    head = head_revision(directory=migrations)
    assert (
        betterworld(["migrate", "generate", "add a nickname", "--directory", str(migrations)]) == 0
    )
    written = Path(capsys.readouterr().out.strip().splitlines()[-1].removeprefix("wrote "))
    assert written.parent == migrations / "versions"
    number = f"{int(head) + 1:04d}"
    assert written.name.endswith(f"_{number}_add_a_nickname.py")
    text = written.read_text()
    assert f'revision: str = "{number}"' in text and f'down_revision: str | None = "{head}"' in text
    assert head_revision(directory=migrations) == number
    assert _listing(REAL) == before  # the repository's migrations are untouched
    # A blank revision renders to nothing but the version bump, and passes the lint.
    assert lint(directory=migrations).ok


def test_generate_without_a_checkout_says_where_it_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An installed package has no `migrations/` next to it: generate refuses, naming why."""
    monkeypatch.setattr(migrate, "_SOURCE_TREE", tmp_path / "absent")
    with pytest.raises(MigrationError, match="writes into a source checkout"):
        generate_revision("anything")
    assert betterworld(["migrate", "generate"]) == 2  # a message is required


def _add_revision(migrations: Path, body: str, *, extra: str = "") -> None:
    head = head_revision(directory=migrations)
    number = f"{int(head) + 1:04d}"
    (migrations / "versions" / f"20270101_{number}_case.py").write_text(
        textwrap.dedent(
            f'''\
            """A case for the lint."""

            import sqlalchemy as sa
            from alembic import op

            revision = "{number}"
            down_revision = "{head}"
            branch_labels = None
            depends_on = None
            {extra}

            def upgrade() -> None:
            '''
        )
        + textwrap.indent(textwrap.dedent(body), "    ")
        + "\n\ndef downgrade() -> None:\n    pass\n"
    )


LOCK = "op.execute(\"SET lock_timeout = '5s'\")\n"

UNSAFE = [
    pytest.param(
        LOCK + 'op.add_column("humans", sa.Column("nickname", sa.Text(), nullable=False))',
        "adding-required-field",
        id="not-null-column-without-default",
    ),
    pytest.param(
        LOCK + 'op.create_index("ix_humans_display_name", "humans", ["display_name"])',
        "require-concurrent-index-creation",
        id="index-build-that-blocks-writes",
    ),
    pytest.param(
        LOCK
        + 'op.create_index("ix_humans_display_name", "humans", ["display_name"], '
        + "postgresql_concurrently=True)",
        "ban-concurrent-index-creation-in-transaction",
        id="concurrent-index-inside-the-transaction",
    ),
    pytest.param(
        LOCK + 'op.drop_column("humans", "display_name")',
        "ban-drop-column",
        id="drop-in-one-step",
    ),
    pytest.param(
        'op.add_column("humans", sa.Column("nickname", sa.Text(), nullable=True))',
        "require-lock-timeout",
        id="no-lock-timeout",
    ),
]


@pytest.mark.parametrize(("body", "rule"), UNSAFE)
def test_an_unsafe_migration_fails_the_lint(migrations: Path, body: str, rule: str) -> None:
    _add_revision(migrations, body)
    result = lint(directory=migrations)
    assert not result.ok
    assert rule in result.report, result.report


SAFE = [
    pytest.param(
        LOCK
        + 'op.add_column("humans", sa.Column("nickname", sa.Text(), nullable=True))\n'
        + "with op.get_context().autocommit_block():\n"
        + '    op.create_index("ix_humans_nickname", "humans", ["nickname"], '
        + "postgresql_concurrently=True)",
        "",
        id="nullable-column-and-concurrent-index",
    ),
    pytest.param(
        LOCK + 'op.add_column("humans", sa.Column("karma", sa.BigInteger(), nullable=False, '
        'server_default="0"))',
        "",
        id="not-null-column-with-a-default",
    ),
    pytest.param(
        LOCK
        + 'op.create_table("nicknames", sa.Column("id", sa.Uuid(), primary_key=True), '
        + 'sa.Column("name", sa.Text(), nullable=False))\n'
        + 'op.create_index("ix_nicknames_name", "nicknames", ["name"])',
        "",
        id="new-table-with-its-index",
    ),
    pytest.param(
        LOCK + 'op.drop_column("humans", "display_name")',
        'squawk_ignore = {"ban-drop-column": "phase two: nothing reads it since 0014"}',
        id="second-phase-of-a-drop-declared",
    ),
]


@pytest.mark.parametrize(("body", "extra"), SAFE)
def test_a_safe_migration_passes_the_lint(migrations: Path, body: str, extra: str) -> None:
    _add_revision(migrations, body, extra=extra)
    result = lint(directory=migrations)
    assert result.ok, result.report
    assert result.revisions == [head_revision(directory=migrations)]


def test_an_exception_needs_its_reason(migrations: Path) -> None:
    _add_revision(
        migrations,
        LOCK + 'op.drop_column("humans", "display_name")',
        extra='squawk_ignore = {"ban-drop-column": ""}',
    )
    with pytest.raises(MigrationError, match="needs a reason"):
        lint(directory=migrations)


def test_the_repository_passes_and_the_baseline_is_a_real_revision() -> None:
    assert lint().ok
    every = [revision for _, revision in migrate.revisions_after("base")]
    assert BASELINE_REVISION in every
