"""`serve --processes 2`: two processes on their own ports share the calls of Envoy and of a
round-robin internal channel, metrics add up, SIGTERM stops the group."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import grpc
import httpx
from betterworld.agent.v1 import agent_pb2, agent_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.core.process_ports import group_target, process_ports
from services.core.runtime import internal_channel
from tests.support.e2e_stack import EnvoyProcess
from tooling.devstack import EmbeddedPostgres, EmbeddedValkey, free_port
from tooling.devstack.ports import free_port_group


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _wait_serving(target: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with grpc.insecure_channel(target) as channel:
                status = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=1
                )
            if status.status == health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.RpcError:
            pass
        time.sleep(0.2)
    raise AssertionError("the process group did not become SERVING")


def _served(log: Path) -> Counter[int]:
    """ListAgents calls answered so far, by process id (from the access log lines)."""
    lines = log.read_text().splitlines()
    return Counter(
        entry["pid"]
        for entry in (json.loads(line) for line in lines if line.startswith("{"))
        if entry.get("event") == "rpc" and entry.get("method", "").endswith("/ListAgents")
    )


async def _list_agents(target: str, calls: int) -> None:
    channel = internal_channel(target)
    try:
        stub = agent_pb2_grpc.AgentServiceStub(channel)
        await channel.channel_ready()
        for _ in range(calls):
            await stub.ListAgents(agent_pb2.ListAgentsRequest(), timeout=5)
    finally:
        await channel.close(None)


def test_process_group_balances_calls_and_aggregates_metrics(
    postgres: EmbeddedPostgres, valkey: EmbeddedValkey, tmp_path: Path, clean_state: None
) -> None:
    ports = free_port_group(lambda port: process_ports(port, 2))
    metrics_port = free_port()
    port = ports[0]
    env = {
        **os.environ,
        "DATABASE_URL": postgres.url,
        "REDIS_URL": valkey.url,
        "DATA_DIR": str(tmp_path),
        "METRICS_PORT_AGENT": str(metrics_port),
        "RATE_LIMIT_PUBLIC_PER_IP": "100000",
    }
    log = (tmp_path / "group.log").open("wb")
    group = subprocess.Popen(
        [sys.executable, "-m", "tooling.cli", "serve", "agent", "--processes", "2",
         "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    envoy: EnvoyProcess | None = None
    try:
        for each in ports:
            _wait_serving(f"127.0.0.1:{each}")
        assert len(_children(group.pid)) == 2
        asyncio.run(_list_agents(group_target("127.0.0.1", ports), 30))
        by_channel = _served(tmp_path / "group.log")
        # Round robin: both processes answer (15 each once both connections are up).
        assert len(by_channel) == 2
        assert min(by_channel.values()) >= 10

        envoy = EnvoyProcess.start(agent_port=ports, work_dir=tmp_path / "envoy")
        for _ in range(40):
            response = httpx.get(f"{envoy.base_url}/api/v1/agents", timeout=5)
            assert response.status_code == 200
        by_envoy = _served(tmp_path / "group.log") - by_channel
        # Least request between two idle hosts is a coin toss: each gets some of the 40.
        assert sum(by_envoy.values()) == 40
        assert len(by_envoy) == 2
        assert min(by_envoy.values()) >= 5

        text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
        handled = sum(
            float(value)
            for value in re.findall(
                r'grpc_server_handled_total\{[^}]*grpc_method="ListAgents"[^}]*\} ([0-9.e+]+)',
                text,
            )
        )
        assert handled == 70
        envoy.stop()
        envoy = None
        group.send_signal(signal.SIGTERM)
        assert group.wait(timeout=20) == 0
        assert _children(group.pid) == []
    finally:
        if envoy is not None:
            envoy.stop()
        if group.poll() is None:
            os.killpg(group.pid, signal.SIGKILL)
            group.wait()
        log.close()
