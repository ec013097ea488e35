"""`serve --processes 2`: two processes share one port, metrics add up, SIGTERM stops the group."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import httpx
from betterworld.agent.v1 import agent_pb2, agent_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.devstack import EmbeddedPostgres, EmbeddedValkey, free_port


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


def test_process_group_shares_a_port_and_aggregates_metrics(
    postgres: EmbeddedPostgres, valkey: EmbeddedValkey, tmp_path: Path, clean_state: None
) -> None:
    port, metrics_port = free_port(), free_port()
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
        [sys.executable, "-m", "services.cli", "serve", "agent", "--processes", "2",
         "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        _wait_serving(f"127.0.0.1:{port}")
        assert len(_children(group.pid)) == 2
        for _ in range(30):
            # A new channel each time: the kernel balances connections, not requests.
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                agent_pb2_grpc.AgentServiceStub(channel).ListAgents(
                    agent_pb2.ListAgentsRequest(), timeout=5
                )
        text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
        handled = sum(
            float(value)
            for value in re.findall(
                r'grpc_server_handled_total\{[^}]*grpc_method="ListAgents"[^}]*\} ([0-9.e+]+)',
                text,
            )
        )
        assert handled == 30
        assert len(set(re.findall(r'pid="(\d+)"', text))) <= 2
        group.send_signal(signal.SIGTERM)
        assert group.wait(timeout=20) == 0
        assert _children(group.pid) == []
    finally:
        if group.poll() is None:
            os.killpg(group.pid, signal.SIGKILL)
            group.wait()
        log.close()
