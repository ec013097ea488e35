"""Integration tests for tooling.devstack: real PostgreSQL and Valkey processes on free ports."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import asyncpg
import pytest
import redis

from tooling.devstack import EmbeddedPostgres, EmbeddedValkey, free_port
from tooling.devstack.ports import port_open, process_alive
from tooling.devstack.postgres import PostgresStartError
from tooling.devstack.valkey import ValkeyStartError

PROJECT_ROOT = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.timeout(60)


async def _fetch(dsn: str, *statements: str) -> list[asyncpg.Record]:
    """Run statements in order on one connection; return the rows of the last one."""
    conn = await asyncpg.connect(dsn)
    try:
        for statement in statements[:-1]:
            await conn.execute(statement)
        return await conn.fetch(statements[-1])
    finally:
        await conn.close()


def _wait_closed(host: str, port: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while port_open(host, port, timeout=0.2):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_postgres_extensions_persistence_and_restart(tmp_path: Path) -> None:
    port = free_port()
    pg = EmbeddedPostgres(tmp_path / "pg", port=port)
    assert pg.url == f"postgresql+asyncpg://betterworld@127.0.0.1:{port}/betterworld"
    assert pg.dsn == f"postgresql://betterworld@127.0.0.1:{port}/betterworld"
    assert not pg.is_running()
    pg.stop()  # safe before any start

    with pg:
        assert pg.created
        assert pg.is_running()
        assert port_open("127.0.0.1", port)
        rows = asyncio.run(
            _fetch(
                pg.dsn,
                "CREATE EXTENSION vector",
                "CREATE EXTENSION cube",
                "CREATE EXTENSION earthdistance",
                "CREATE EXTENSION pg_trgm",
                "CREATE TABLE place (name text, embedding vector(3), lat float8, lon float8)",
                "INSERT INTO place VALUES ('berlin', '[1,0,0]', 52.52, 13.405),"
                " ('paris', '[0,1,0]', 48.8566, 2.3522)",
                """
                SELECT current_database() AS db,
                       pg_encoding_to_char(encoding) AS enc,
                       datcollate,
                       (SELECT embedding <=> '[1,0,0]' FROM place WHERE name = 'paris') AS cos,
                       (SELECT earth_distance(ll_to_earth(52.52, 13.405),
                                              ll_to_earth(48.8566, 2.3522)) / 1000) AS km,
                       similarity('berlin', 'berlim') AS sim
                FROM pg_database WHERE datname = current_database()
                """,
            )
        )
        row = rows[0]
        assert (row["db"], row["enc"], row["datcollate"]) == ("betterworld", "UTF8", "C")
        assert row["cos"] == pytest.approx(1.0)
        assert 870 < row["km"] < 890
        assert row["sim"] > 0.3

    assert not pg.is_running()
    assert _wait_closed("127.0.0.1", port)
    pg.stop()  # idempotent

    # Same data dir, new handle (as after a process restart): no initdb, data still there.
    again = EmbeddedPostgres(tmp_path / "pg", port=port)
    again.start()
    try:
        assert not again.created
        rows = asyncio.run(_fetch(again.dsn, "SELECT name FROM place ORDER BY name"))
        assert [r["name"] for r in rows] == ["berlin", "paris"]
    finally:
        again.stop()
    assert _wait_closed("127.0.0.1", port)


def test_valkey_data_survives_restart_through_aof(tmp_path: Path) -> None:
    port = free_port()
    with EmbeddedValkey(tmp_path / "valkey", port=port) as vk:
        assert vk.url == f"redis://127.0.0.1:{port}/0"
        client = redis.Redis.from_url(vk.url)
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        client.set("bw:test:key", "kept")
        client.close()

        first_pid = vk.pid
        vk.restart()
        assert vk.pid != first_pid

        client = redis.Redis.from_url(vk.url)
        assert client.get("bw:test:key") == b"kept"
        client.close()
    assert not vk.is_running()
    assert _wait_closed("127.0.0.1", port)
    assert not vk.pid_path.exists()
    vk.stop()  # idempotent


def test_servers_left_by_a_crashed_caller_can_be_stopped(tmp_path: Path) -> None:
    pg_port, vk_port = free_port(), free_port()
    child = textwrap.dedent(
        f"""
        import json, os, signal
        from pathlib import Path
        from tooling.devstack import EmbeddedPostgres, EmbeddedValkey
        pg = EmbeddedPostgres(Path({str(tmp_path / "pg")!r}), port={pg_port})
        vk = EmbeddedValkey(Path({str(tmp_path / "valkey")!r}), port={vk_port})
        pg.start()
        vk.start()
        print(json.dumps({{"valkey": vk.pid}}), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)  # crash: no stop(), no atexit
        """
    )
    pythonpath = os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": pythonpath}
    proc = subprocess.run(
        [sys.executable, "-c", child],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=45,
    )
    assert proc.returncode == -9, proc.stderr
    valkey_pid = json.loads(proc.stdout)["valkey"]

    pg = EmbeddedPostgres(tmp_path / "pg", port=pg_port)
    vk = EmbeddedValkey(tmp_path / "valkey", port=vk_port)
    assert pg.is_running() and vk.is_running()
    assert vk.pid == valkey_pid

    pg.stop()
    vk.stop()
    assert not pg.is_running() and not vk.is_running()
    assert not process_alive(valkey_pid, "valkey-server")
    assert _wait_closed("127.0.0.1", pg_port) and _wait_closed("127.0.0.1", vk_port)


def test_start_failures_are_reported_with_the_log_tail(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]

        vk = EmbeddedValkey(tmp_path / "valkey", port=port)
        with pytest.raises(ValkeyStartError, match="last lines of"):
            vk.start()
        assert not vk.is_running()

        pg = EmbeddedPostgres(tmp_path / "pg", port=port)
        with pytest.raises(PostgresStartError, match=r"(?s)last lines of.*could not"):
            pg.start()
        assert not pg.is_running()
