"""`betterworld up`'s supervisor under kill -9: a service, Valkey and Envoy each come back within
seconds while the rest keeps serving, every write acknowledged meanwhile is there afterwards,
and `betterworld status` shows the restarts."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.support.e2e_stack import isolated_stack_settings
from tests.support.supervised import supervised_stack
from tooling.stack import Stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def supervised(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, str]]:
    """The whole stack on free ports with its supervisor checking every 0.2 s."""
    data = Path(tmp_path_factory.mktemp("supervised"))
    settings = isolated_stack_settings(data, rate_limit_public_per_ip=100_000)
    with supervised_stack(settings) as stack:
        yield stack, f"http://{settings.host}:{settings.envoy_port}"


def _until(check: Callable[[], Any], seconds: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        try:
            if check():
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"not back within {seconds} s")


def _serving(base: str) -> bool:
    return httpx.get(f"{base}/api/v1/problems?limit=1", timeout=2).status_code == 200


def _restarts(stack: Stack, name: str) -> int:
    return next(p.restarts for p in stack.supervisor.processes if p.name == name)


def test_a_killed_service_comes_back_and_no_acknowledged_write_is_lost(
    supervised: tuple[Stack, str],
) -> None:
    stack, base = supervised
    key = httpx.post(
        f"{base}/api/v1/auth/agents/register",
        json={
            "username": "supervised-writer",
            "framework": "custom",
            "specializations": ["disaster_response"],
            "email": "w@example.org",
        },
        timeout=10,
    )
    assert key.status_code == 201, key.text
    auth = {"authorization": f"Bearer {key.json()['apiKey']}"}
    acknowledged: list[str] = []
    writing = threading.Event()
    writing.set()

    def write() -> None:
        n = 0
        with httpx.Client(base_url=base, timeout=5) as http:
            while writing.is_set():
                n += 1
                try:
                    created = http.post(
                        "/api/v1/problems",
                        headers=auth,
                        json={
                            "title": f"Flooded underpass number {n} in the old town",
                            "description": "The underpass floods after every storm and "
                            "pedestrians, including children on their way to school, wade through.",
                            "domain": "disaster_response",
                            "severity": "medium",
                            "geographicScope": "local",
                        },
                    )
                except httpx.HTTPError:
                    continue
                if created.status_code == 201:
                    acknowledged.append(created.json()["problem"]["problemId"])
                time.sleep(0.05)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        time.sleep(1)
        before = stack.children["content"].pid
        os.kill(before, signal.SIGKILL)
        back = _until(lambda: stack.children["content"].pid != before and _serving(base), 30)
        assert back < 20
        time.sleep(1)
    finally:
        writing.clear()
        writer.join(10)
    assert len(acknowledged) > 5
    assert _restarts(stack, "content") == 1

    async def stored() -> set[str]:
        conn = await asyncpg.connect(stack.postgres.dsn)
        try:
            rows = await conn.fetch("SELECT id::text FROM problems")
        finally:
            await conn.close()
        return {r["id"] for r in rows}

    assert set(acknowledged) <= asyncio.run(stored())


@pytest.mark.parametrize("name", ["valkey", "envoy"])
def test_valkey_and_envoy_killed_come_back(supervised: tuple[Stack, str], name: str) -> None:
    stack, base = supervised
    before = _restarts(stack, name)
    pid = stack.valkey.pid if name == "valkey" else stack.children["envoy"].pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    back = _until(lambda: _restarts(stack, name) == before + 1 and _serving(base), 45)
    assert back < 30
    status = subprocess.run(
        [sys.executable, "-m", "tooling.cli", "status"],
        env={**stack.env(), "DATA_DIR": str(stack.data_dir)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert status.returncode == 0, status.stderr
    line = next(row for row in status.stdout.splitlines() if row.startswith(name))
    assert line.split()[3] == str(before + 1)
    for other in ("agent", "content", "mission", "worker"):
        assert "SERVING" in next(r for r in status.stdout.splitlines() if r.startswith(other))
