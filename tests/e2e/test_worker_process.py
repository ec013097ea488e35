"""The worker process is probed like a service: gRPC health, metrics, a clean drain on SIGTERM."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx
import pytest
from grpc_health.v1 import health_pb2

from tests.support.e2e_stack import HOST, grpc_health, service_env, spawn
from tooling.devstack import EmbeddedPostgres, EmbeddedValkey, free_port

pytestmark = pytest.mark.e2e
SERVING = health_pb2.HealthCheckResponse.SERVING


def test_the_worker_serves_health_and_metrics_and_drains_on_sigterm(
    postgres: EmbeddedPostgres, valkey: EmbeddedValkey, clean_state: None, tmp_path: Path
) -> None:
    port, metrics_port = free_port(), free_port()
    env = service_env(
        database_url=postgres.url,
        redis_url=valkey.url,
        port=free_port(),
        metrics_port=0,
        data_dir=tmp_path,
        extra={"WORKER_PORT": str(port), "METRICS_PORT_WORKER": str(metrics_port)},
    )
    worker = spawn(
        "worker", [sys.executable, "-m", "tooling.cli", "worker"], env=env, log_dir=tmp_path
    )
    try:
        deadline = time.monotonic() + 60  # the classifier loads before the server starts
        while grpc_health(f"{HOST}:{port}") != SERVING:
            assert worker.alive(), worker.log()
            assert time.monotonic() < deadline, worker.log()
            time.sleep(0.2)
        metrics = httpx.get(f"http://{HOST}:{metrics_port}/metrics", timeout=5).text
        assert "bullmq_queue_size" in metrics or "bullmq_jobs_completed_total" in metrics
        assert worker.stop(timeout=30) == 0, worker.log()
        assert "worker_stopping" in worker.log(200)
    finally:
        worker.stop()
