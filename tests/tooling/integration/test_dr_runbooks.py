"""The disaster-recovery playbooks run: every command of docs/disaster-recovery.md's `sh` blocks
exits 0, in the document's order, against a stack of its own and a scratch database with data in
it, whose restore from the nightly backup brings that data back. Commands in `sh not-checked`
blocks (Docker, a remote host) are each listed here with the reason."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest

from services.core.migrate import upgrade
from services.mission.ledger_store import LedgerStore
from services.mission.model import Movement
from services.registry import REGISTRY
from tests.support.databases import scratch_database
from tests.support.e2e_stack import create_operator_key, isolated_stack_settings
from tests.support.supervised import supervised_stack
from tooling.stack import Stack, settings_environment

DOCUMENT = Path(__file__).resolve().parents[3] / "docs" / "disaster-recovery.md"
VENV_BIN = Path(sys.executable).parent

_DOCKER = "needs Docker and the production compose host, which this machine has not"
NOT_CHECKED = {
    "docker compose ps postgres": _DOCKER,
    "docker compose logs --tail 200 postgres": _DOCKER,
    "docker compose restart postgres": _DOCKER,
    "docker compose stop agent content guardrail mission worker": _DOCKER,
    "cp -a /srv/betterworld/evidence /srv/betterworld/evidence-before-restore": (
        "the production host's evidence directory does not exist here"
    ),
    'docker compose exec redis redis-cli -a "$REDIS_PASSWORD" --no-auth-warning ping': _DOCKER,
    'docker compose exec redis redis-cli -a "$REDIS_PASSWORD" --no-auth-warning INFO persistence': (
        _DOCKER
    ),
    "docker compose logs --tail 200 redis": _DOCKER,
    "docker compose restart redis": _DOCKER,
    "docker compose run --rm redis redis-check-aof --fix "
    "/data/appendonlydir/appendonly.aof.manifest": _DOCKER,
    "docker compose start redis": _DOCKER,
    "docker compose up -d --no-deps --force-recreate worker": _DOCKER,
    "docker compose run --rm agent migrate downgrade --revision -1": _DOCKER,
    "docker compose up -d --no-deps agent content guardrail mission worker": _DOCKER,
    "docker compose logs --no-color --timestamps > incident-logs.txt": _DOCKER,
    'docker compose exec postgres psql -U betterworld -c "SELECT * FROM audit_log ORDER BY 1 '
    'DESC LIMIT 200"': _DOCKER,
}

RESTORE_FROM_BACKUP = "betterworld backup restore --name <backup> --yes"
"""Run on a database that was lost: the test drops and creates it again just before."""


@dataclass(frozen=True)
class Block:
    """A fenced `sh` block of the document."""

    checked: bool
    commands: list[str]


def blocks(text: str) -> list[Block]:
    """The document's `sh` blocks, in order; a line ending in a backslash continues."""
    found: list[Block] = []
    lines = iter(text.splitlines())
    for line in lines:
        fence = line.strip()
        if not fence.startswith("```sh"):
            continue
        info = fence.removeprefix("```sh").split()
        commands: list[str] = []
        pending = ""
        for inner in lines:
            stripped = inner.strip()
            if stripped == "```":
                break
            if pending:
                stripped = f"{pending} {stripped}"
                pending = ""
            if stripped.endswith("\\"):
                pending = stripped[:-1].rstrip()
                continue
            if stripped and not stripped.startswith("#"):
                commands.append(stripped)
        found.append(Block(checked="not-checked" not in info, commands=commands))
    return found


def _localized(command: str, settings: object, data_dir: Path) -> str:
    """The document's default ports and `.data/` as the scratch stack's."""
    defaults = REGISTRY.settings_type().model_fields
    for name, spec in defaults.items():
        if name.endswith("_port") or name.startswith("metrics_port_"):
            command = re.sub(
                rf"\blocalhost:{spec.default}\b",
                f"127.0.0.1:{getattr(settings, name)}",
                command,
            )
    return command.replace(".data/", f"{data_dir}/")


LEDGER = (
    "SELECT md5(coalesce(string_agg(id::text || ':' || human_id::text || ':' || amount::text "
    "|| ':' || balance_after::text, ',' ORDER BY id), '')) FROM token_ledger"
)


def libpq_url(url: str) -> str:
    """A SQLAlchemy asyncpg URL as asyncpg's own."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _load(url: str) -> None:
    """Humans with ledger movements: the money is what a restore must bring back exactly."""
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    conn = await asyncpg.connect(libpq_url(url))
    try:
        for n in range(10):
            human = uuid.uuid4()
            await conn.execute(
                "INSERT INTO humans (id, email, password_hash, display_name) "
                "VALUES ($1, $2, 'x', 'H')",
                human,
                f"dr{n}@example.org",
            )
            ledger = LedgerStore(engine)
            await ledger.post(Movement(str(human), 40 + n, "EARN_GRANT", f"grant-{n}"))
    finally:
        await conn.close()
        await engine.dispose()


async def _facts(url: str) -> tuple[int, str]:
    conn = await asyncpg.connect(libpq_url(url))
    try:
        return int(await conn.fetchval("SELECT count(*) FROM humans")), str(
            await conn.fetchval(LEDGER)
        )
    finally:
        await conn.close()


async def _recreate(admin_url: str, database: str) -> None:
    conn = await asyncpg.connect(libpq_url(admin_url))
    try:
        await conn.execute(f'DROP DATABASE "{database}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{database}"')
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def scratch_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The whole local stack on free ports, supervised as `betterworld up` does."""
    data = Path(tmp_path_factory.mktemp("dr"))
    with supervised_stack(isolated_stack_settings(data), every=0.5) as stack:
        yield stack


def test_every_command_is_run_or_listed_with_the_reason_it_cannot_run_here() -> None:
    found = blocks(DOCUMENT.read_text())
    unchecked = [c for b in found if not b.checked for c in b.commands]
    assert sorted(unchecked) == sorted(NOT_CHECKED)
    checked = [c for b in found if b.checked for c in b.commands]
    assert RESTORE_FROM_BACKUP in checked
    for needed in ("betterworld status", "betterworld migrate status", "betterworld backup list"):
        assert needed in checked
    for action in ("create", "verify", "restore"):
        assert any(c.startswith(f"betterworld backup {action}") for c in checked), action


# About 30 commands, each a process of its own, on a stack of its own: a minute on a busy machine.
@pytest.mark.timeout(240)
def test_the_playbooks_commands_run_against_a_scratch_stack(
    scratch_stack: Stack, tmp_path: Path
) -> None:
    settings = scratch_stack.settings
    base = f"http://127.0.0.1:{settings.envoy_port}"
    registered = httpx.post(
        f"{base}/api/v1/auth/agents/register",
        json={"username": f"dr-{uuid.uuid4().hex[:8]}", "framework": "custom",
              "specializations": ["disaster_response"], "email": "dr@example.org"},
        timeout=10,
    )  # fmt: skip
    assert registered.status_code == 201, registered.text
    operator_key = create_operator_key(scratch_stack.postgres.url, name="dr-on-call")

    with scratch_database(scratch_stack.postgres, "bw_dr") as database_url:
        upgrade(database_url)
        asyncio.run(_load(database_url))
        env = {
            **os.environ,
            **settings_environment(settings),
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "DATA_DIR": str(scratch_stack.data_dir),
            "REDIS_URL": scratch_stack.valkey.url,
            "DATABASE_URL": database_url,
            "BACKUP_DIR": str(tmp_path / "backups"),
            "BW_OPERATOR_KEY": operator_key,
        }

        def run(command: str) -> str:
            done = subprocess.run(
                ["bash", "-c", command],
                env=env,
                cwd=tmp_path,  # no .env of the checkout
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
            return done.stdout

        def newest(suffix: str = "") -> str:
            names = [
                json.loads(line)["name"] for line in run("betterworld backup list").splitlines()
            ]
            return [n for n in names if n.endswith(suffix)][-1]

        run("betterworld backup create --label daily")  # what the worker does at 03:00 UTC
        before = asyncio.run(_facts(database_url))
        assert before[0] == 10
        ran = []
        for block in blocks(DOCUMENT.read_text()):
            if not block.checked:
                continue
            for command in block.commands:
                if command == RESTORE_FROM_BACKUP:
                    # The playbook's case: the database is gone; a new, empty one takes its place.
                    asyncio.run(
                        _recreate(scratch_stack.postgres.url, database_url.rsplit("/", 1)[1])
                    )
                    assert "database at nothing" in run("betterworld migrate status")
                filled = _localized(command, settings, scratch_stack.data_dir).replace(
                    "<agent-id>", registered.json()["agentId"]
                )
                if "<pre-migrate-backup>" in filled:
                    filled = filled.replace("<pre-migrate-backup>", newest("-pre-migrate"))
                if "<backup>" in filled:
                    filled = filled.replace("<backup>", newest())
                output = run(filled)
                ran.append(command)
                if command == RESTORE_FROM_BACKUP:
                    assert asyncio.run(_facts(database_url)) == before
                if command == "betterworld status":
                    for name in ("postgres", "valkey", *REGISTRY.names, "worker", "envoy"):
                        assert any(row.startswith(name) for row in output.splitlines()), name
        assert asyncio.run(_facts(database_url)) == before
    assert len(ran) >= 15
