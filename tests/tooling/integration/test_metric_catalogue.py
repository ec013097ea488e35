"""docs/metrics.md against what the real processes export: the whole stack (four services, the
worker, Envoy, PostgreSQL, Valkey) serves some traffic, then every /metrics page is scraped.
Both ways: each exported family is catalogued with its type and labels, and each catalogued
metric is exported by some process. The exporter table is checked against the real
postgres_exporter and redis_exporter run over the stack's databases."""

from __future__ import annotations

import asyncio
import math
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.core.business_refresh import TASK_NAME
from services.core.migrate import upgrade
from services.core.queues import GUARDRAIL_QUEUE
from services.registry import REGISTRY
from tests.support.e2e_stack import Child, isolated_stack_settings, spawn
from tests.support.metric_catalogue import Exported, ours, read_catalogue, scrape
from tooling.devstack import free_port
from tooling.process import seed
from tooling.stack import Stack

pytestmark = pytest.mark.e2e

CONDITIONAL = {
    "embedding_tokens_total": "VOYAGE_API_KEY",
    "evidence_vision_checks_total": "ANTHROPIC_API_KEY",
}
"""Catalogued metrics whose module a process imports only when this setting is given."""
NOT_FROM_EXPORTERS = {"up", "node_filesystem_avail_bytes", "node_filesystem_size_bytes"}
"""Exporter-table entries the two database exporters run here do not make: Prometheus's own `up`,
and node_exporter's (tests/e2e/test_alerting.py queries those through Prometheus)."""
PROBLEM = {
    "title": "Broken water pumps in Kisumu informal settlements",
    "description": "Half of the hand pumps serving informal settlements in Kisumu have been "
    "broken for months, so families walk an hour to collect water from the lake.",
    "domain": "clean_water_sanitation",
    "severity": "high",
    "geographicScope": "local",
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The whole stack on free ports over a fresh, seeded database, after some traffic: a
    problem created and decided by the worker, lists read."""
    data = Path(tmp_path_factory.mktemp("catalogue"))
    stack = Stack(isolated_stack_settings(data))
    try:
        stack.start_databases()
        upgrade(stack.postgres.url)
        settings = stack.settings.model_copy(
            update={"database_url": stack.postgres.url, "redis_url": stack.valkey.url}
        )
        seeded = asyncio.run(seed(settings))
        stack.start_services()
        stack.wait_healthy()
        _traffic(stack, seeded.agents[0].api_key)
        yield stack
    finally:
        stack.stop()


def _traffic(stack: Stack, api_key: str) -> None:
    base = f"http://{stack.settings.host}:{stack.settings.envoy_port}"
    author = {"authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=base, timeout=15) as http:
        assert http.get("/api/v1/problems", params={"limit": 5}).status_code == 200
        assert http.get("/api/v1/agents/me").status_code == 401
        created = http.post("/api/v1/problems", json=PROBLEM, headers=author)
        assert created.status_code == 201, created.text
        evaluation = created.json()["problem"]["guardrailEvaluationId"]
        path = f"/api/v1/guardrails/evaluations/{evaluation}"
        deadline = time.monotonic() + 60
        while http.get(path, headers=author).json().get("decision") in (None, "PENDING"):
            assert time.monotonic() < deadline, "the worker did not decide in 60 s"
            time.sleep(0.3)


def _endpoints(stack: Stack) -> dict[str, str]:
    settings = stack.settings
    ports = {name: settings.service_ports(name)[1] for name in REGISTRY.names}
    ports["worker"] = settings.metrics_port_worker
    return {name: f"http://{settings.host}:{port}/metrics" for name, port in ports.items()}


@pytest.fixture(scope="module")
def exported(stack: Stack) -> dict[str, dict[str, Exported]]:
    """Each process's own families, by process name."""
    return {name: ours(scrape(url)) for name, url in _endpoints(stack).items()}


def test_every_exported_metric_is_catalogued_with_its_type_and_labels(
    exported: dict[str, dict[str, Exported]],
) -> None:
    catalogue = read_catalogue().ours
    for process, families in exported.items():
        unknown = sorted(set(families) - set(catalogue))
        assert not unknown, f"{process} exports metrics docs/metrics.md does not list: {unknown}"
        for name, family in families.items():
            assert family.type == catalogue[name].type, (process, name)
            if family.labels is not None:
                assert family.labels == catalogue[name].labels, (process, name)


def test_every_catalogued_metric_is_exported_by_some_process(
    exported: dict[str, dict[str, Exported]],
) -> None:
    catalogue = read_catalogue().ours
    everywhere = {name for families in exported.values() for name in families}
    missing = sorted(set(catalogue) - everywhere)
    assert missing == sorted(CONDITIONAL), (
        f"catalogued but exported by no process: {sorted(set(missing) - set(CONDITIONAL))}"
    )
    # Most families have samples after the traffic, so most labels were really checked.
    sampled = [f for families in exported.values() for f in families.values() if f.labels]
    assert len({f.name for f in sampled}) >= 15


def test_the_worker_times_jobs_and_rounds_and_publishes_the_business_gauges(
    stack: Stack,
) -> None:
    text = httpx.get(_endpoints(stack)["worker"], timeout=10).text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }

    def count(queue: str) -> float:
        key = ("job_duration_seconds_count", (("outcome", "completed"), ("queue", queue)))
        return samples.get(key, 0.0)

    assert count(GUARDRAIL_QUEUE) >= 1  # the problem's evaluation
    assert count(TASK_NAME) >= 1  # the first round runs as the worker starts
    assert count("mission-expiry") >= 1
    figures = {
        name: value for (name, labels), value in samples.items() if name.startswith("betterworld_")
    }
    assert set(figures) == {
        "betterworld_active_agents_24h",
        "betterworld_problems_today",
        "betterworld_approval_rate_24h",
        "betterworld_missions_completed_week",
        "betterworld_tokens_distributed_week",
    }
    # The seed reported its problems today, before the worker started.
    assert figures["betterworld_problems_today"] >= 16
    assert not any(math.isnan(v) for n, v in figures.items() if "rate" not in n)


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: `make ops-tools` installs it (make test does)")
    return path


@pytest.fixture(scope="module")
def exporters(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """postgres_exporter and redis_exporter over the stack's databases; their /metrics URLs."""
    host = stack.settings.host
    logs = Path(tmp_path_factory.mktemp("exporters"))
    pg_port, redis_port = free_port(), free_port()
    children: list[Child] = [
        spawn(
            "postgres-exporter",
            [_binary("prometheus-postgres-exporter"), f"--web.listen-address={host}:{pg_port}"],
            env={"DATA_SOURCE_NAME": f"{stack.postgres.dsn}?sslmode=disable"},
            log_dir=logs,
        ),
        spawn(
            "redis-exporter",
            [
                _binary("prometheus-redis-exporter"),
                f"-web.listen-address={host}:{redis_port}",
                f"-redis.addr={stack.valkey.url}",
            ],
            env={},
            log_dir=logs,
        ),
    ]
    urls = [f"http://{host}:{port}/metrics" for port in (pg_port, redis_port)]
    try:
        deadline = time.monotonic() + 20
        for child, url in zip(children, urls, strict=True):
            while True:
                assert child.alive(), child.log()
                try:
                    if httpx.get(url, timeout=5).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, child.log()
                time.sleep(0.2)
        yield urls
    finally:
        for child in children:
            child.stop()


def test_the_exporter_metrics_the_dashboards_and_alerts_read_exist(exporters: list[str]) -> None:
    families: dict[str, Exported] = {}
    for url in exporters:
        families |= scrape(url)
    for entry in read_catalogue().exporters.values():
        if entry.name in NOT_FROM_EXPORTERS:
            continue
        assert entry.name in families, f"no exporter exports {entry.name}"
        family = families[entry.name]
        assert (family.type, family.labels) == (entry.type, entry.labels), entry.name
