"""`python -m scripts.lint_migrations`: squawk on the SQL of every migration newer than the
baseline (part of `make lint`).

Squawk reads SQL, so each new revision's upgrade is rendered offline (`alembic upgrade --sql
previous:revision`, no server) into a file of its own and squawk checks the files with the
repository's `.squawk.toml`. The rules it enforces are the migration safety rules: new columns
nullable or with a default, drops in two phases (the code stops using a column in one release;
a later migration drops it, declaring so), indexes built CONCURRENTLY (outside the migration's
transaction, in Alembic's `autocommit_block()`), constraints added NOT VALID then validated, and
a `lock_timeout` before statements that take strong locks, so a migration stuck behind a long
transaction fails instead of stalling every query on the table.

A revision that must break a rule on purpose (the second phase of a drop) says so in a
module-level `squawk_ignore = {"ban-drop-column": "why it is safe now"}`; every entry needs its
reason. Revisions up to BASELINE_REVISION were written before the check and are not linted.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from services.core.migrate import MigrationError, revisions_after, upgrade_sql

BASELINE_REVISION = "0014"
"""The newest revision written before migrations were linted; later ones must pass squawk."""
REPOSITORY = Path(__file__).resolve().parents[1]
CONFIG = REPOSITORY / ".squawk.toml"


@dataclass(frozen=True)
class LintResult:
    """Squawk's verdict on the new revisions."""

    ok: bool
    revisions: list[str]
    report: str


def squawk_binary() -> str:
    """squawk from the project's environment (the `squawk-cli` dev dependency), else PATH."""
    beside = Path(sys.executable).parent / "squawk"
    found = str(beside) if beside.exists() else shutil.which("squawk")
    if found is None:
        raise SystemExit("squawk not found: run `make install`")
    return found


def _ignored(directory: Path | None, revision: str) -> dict[str, str]:
    from alembic.script import ScriptDirectory

    from services.core.migrate import OFFLINE_URL, alembic_config

    script = ScriptDirectory.from_config(alembic_config(OFFLINE_URL, directory=directory))
    declared = getattr(script.get_revision(revision).module, "squawk_ignore", {})
    for rule, reason in declared.items():
        if not isinstance(reason, str) or not reason.strip():
            raise MigrationError(f"revision {revision}: squawk_ignore[{rule!r}] needs a reason")
    return dict(declared)


def lint(
    *, directory: Path | None = None, baseline: str = BASELINE_REVISION, config: Path = CONFIG
) -> LintResult:
    """Renders every revision after `baseline` and runs squawk on the SQL."""
    steps = revisions_after(baseline, directory=directory)
    if not steps:
        return LintResult(True, [], f"no migrations after the baseline {baseline}")
    with tempfile.TemporaryDirectory(prefix="squawk-") as out:
        files = []
        for previous, revision in steps:
            try:
                sql = upgrade_sql(previous, revision, directory=directory)
            except Exception as exc:  # an online-only migration (it reads the database)
                raise MigrationError(
                    f"revision {revision} cannot be rendered as SQL for the lint: {exc}"
                ) from exc
            header = "".join(
                f"-- squawk-ignore-file {rule}\n" for rule in _ignored(directory, revision)
            )
            path = Path(out) / f"revision_{revision}.sql"
            path.write_text(header + sql)
            files.append(str(path))
        done = subprocess.run(
            [squawk_binary(), "--config", str(config), "--reporter", "gcc", *files],
            capture_output=True,
            text=True,
            check=False,
        )
    report = (done.stdout + done.stderr).replace(f"{out}/", "")
    return LintResult(done.returncode == 0, [r for _, r in steps], report.strip())


def main(argv: Sequence[str] | None = None) -> int:
    """Exit status 0 when every new migration passes."""
    parser = argparse.ArgumentParser(prog="lint_migrations", description=__doc__)
    parser.add_argument("--directory", type=Path, help="migrations directory (default: the repo's)")
    parser.add_argument("--baseline", default=BASELINE_REVISION)
    args = parser.parse_args(argv)
    try:
        result = lint(directory=args.directory, baseline=args.baseline)
    except MigrationError as exc:
        print(f"migration lint: {exc}", file=sys.stderr)
        return 1
    if result.report:
        print(result.report)
    if result.ok and result.revisions:
        print(f"migrations {', '.join(result.revisions)}: squawk found nothing unsafe")
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
