"""The real Prometheus and Alertmanager (`betterworld up --observe`) watch the real local stack:
every process and both exporters are scraped, and a service that stops answering makes APIDown
fire at Alertmanager, which pages the receiver of its severity (a local webhook standing in for
the pager), not the chat or the digest."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from services.registry import REGISTRY
from tests.support.e2e_stack import isolated_stack_settings
from tests.support.supervised import supervised_stack
from tooling import observe
from tooling.observe import ObserveOptions
from tooling.stack import Stack

pytestmark = pytest.mark.e2e

# The real rules with APIDown's `for:` cut from a minute to seconds; scrapes and evaluations
# every second, so the whole chain takes seconds.
OPTIONS = ObserveOptions(
    scrape_interval="1s", evaluation_interval="1s", alert_for={"APIDown": "3s"}
)


@dataclass
class Webhooks:
    """An HTTP server on 127.0.0.1 that records what Alertmanager posts, by path."""

    url: str
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def alerts(self, path: str, alertname: str) -> list[dict[str, Any]]:
        """The alerts named `alertname` in the notifications posted to `path`."""
        return [
            alert
            for posted, body in list(self.received)
            if posted == path
            for alert in body.get("alerts", [])
            if alert["labels"].get("alertname") == alertname
        ]


@pytest.fixture(scope="module")
def webhooks() -> Iterator[Webhooks]:
    """The pager, chat and digest endpoints of the receivers."""
    received: list[tuple[str, dict[str, Any]]] = []

    class Record(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            received.append((self.path, json.loads(body)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Record)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Webhooks(f"http://127.0.0.1:{server.server_address[1]}", received)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory, webhooks: Webhooks) -> Iterator[Stack]:
    """The whole stack on free ports, supervised, with Prometheus, Alertmanager and the
    exporters; receivers from the settings, as `betterworld up --observe` runs them."""
    missing = observe.missing_binaries()
    if missing:
        pytest.fail(f"{', '.join(missing)} missing: `make ops-tools` installs them")
    data = Path(tmp_path_factory.mktemp("observed"))
    settings = isolated_stack_settings(
        data,
        alert_page_webhook_url=f"{webhooks.url}/page",
        alert_chat_webhook_url=f"{webhooks.url}/chat",
        alert_digest_webhook_url=f"{webhooks.url}/digest",
    )
    with supervised_stack(settings, then=lambda s: s.start_observability(OPTIONS)) as stack:
        yield stack


def _until(check: Callable[[], Any], seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            found = check()
        except httpx.HTTPError:
            found = None
        if found:
            return found
        time.sleep(0.25)
    raise AssertionError(f"{what}: not within {seconds} s")


def _prometheus(stack: Stack, path: str, **params: str) -> Any:
    url = f"http://127.0.0.1:{stack.settings.prometheus_port}{path}"
    answer = httpx.get(url, params=params, timeout=5)
    answer.raise_for_status()
    return answer.json()["data"]


def _value(stack: Stack, query: str) -> float | None:
    result = _prometheus(stack, "/api/v1/query", query=query)["result"]
    return float(result[0]["value"][1]) if result else None


def _metrics_target(stack: Stack, name: str) -> str:
    return f"127.0.0.1:{stack.settings.service_ports(name)[1]}"


def test_prometheus_scrapes_every_process_and_the_exporters(observed: Stack) -> None:
    expected = {_metrics_target(observed, n) for n in REGISTRY.names} | {
        f"127.0.0.1:{observed.settings.metrics_port_worker}"
    }

    def healthy() -> dict[str, set[str]] | None:
        targets = _prometheus(observed, "/api/v1/targets")["activeTargets"]
        up: dict[str, set[str]] = {}
        for target in targets:
            if target["health"] == "up":
                up.setdefault(target["labels"]["job"], set()).add(target["labels"]["instance"])
        everything = up.get("betterworld") == expected and {"node", "postgres", "redis"} <= set(up)
        return up if everything else None

    _until(healthy, 20, "every target up")
    # The exporters reach the embedded databases, and DBConnectionsHigh's inputs exist.
    assert _until(lambda: _value(observed, "pg_up"), 10, "pg_up") == 1
    assert _until(lambda: _value(observed, "redis_up"), 10, "redis_up") == 1
    ratio = _value(observed, "sum(pg_stat_activity_count) / max(pg_settings_max_connections)")
    assert ratio is not None and 0 < ratio < 0.8
    # DiskUsageHigh's expression has data: this machine's disks, as node_exporter reports them.
    used = _value(
        observed,
        'max(1 - node_filesystem_avail_bytes{fstype!~"tmpfs|overlay"} '
        '/ node_filesystem_size_bytes{fstype!~"tmpfs|overlay"})',
    )
    assert used is not None and 0 <= used <= 1


def test_the_rules_loaded_are_alerts_yml_with_only_the_for_shortened(observed: Stack) -> None:
    written = {
        rule["alert"]: rule
        for group in yaml.safe_load(observe.source_rule_files()[0].read_text())["groups"]
        for rule in group["rules"]
    }
    loaded = {
        rule["name"]: rule
        for group in _prometheus(observed, "/api/v1/rules")["groups"]
        for rule in group["rules"]
    }
    assert set(loaded) == set(written)
    assert loaded["APIDown"]["query"] == written["APIDown"]["expr"].strip()
    assert loaded["APIDown"]["duration"] == 3
    assert loaded["APIDown"]["labels"] == written["APIDown"]["labels"]


def test_status_shows_the_observability_processes(observed: Stack) -> None:
    status = subprocess.run(
        [sys.executable, "-m", "tooling.cli", "status"],
        env={**observed.env(), "DATA_DIR": str(observed.data_dir)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert status.returncode == 0, status.stderr
    for name in observe.BINARIES:
        line = next(row for row in status.stdout.splitlines() if row.startswith(name))
        assert line.split()[1] == str(observed.children[name].pid)
        assert line.endswith("healthy") and "unhealthy" not in line, line


@pytest.mark.timeout(90)
def test_a_stopped_service_pages_through_alertmanager(observed: Stack, webhooks: Webhooks) -> None:
    instance = _metrics_target(observed, "content")
    alertmanager = f"http://127.0.0.1:{observed.settings.alertmanager_port}"
    _until(lambda: _value(observed, f'up{{instance="{instance}"}}') == 1, 20, "content scraped")
    assert not webhooks.alerts("/page", "APIDown")
    pid = observed.children["content"].pid
    # Stopped, not killed: the process is alive, so the supervisor leaves it be, but it answers
    # nothing (a hung process is exactly what only the metrics can tell).
    os.kill(pid, signal.SIGSTOP)
    try:

        def active() -> list[dict[str, Any]]:
            answer = httpx.get(
                f"{alertmanager}/api/v2/alerts",
                params={"filter": 'alertname="APIDown"', "active": "true"},
                timeout=5,
            )
            answer.raise_for_status()
            return [a for a in answer.json() if a["labels"].get("instance") == instance]

        firing = _until(active, 45, "APIDown at Alertmanager")
        assert firing[0]["labels"]["severity"] == "P1"
        assert firing[0]["annotations"]["runbook_url"].endswith("runbooks.md#apidown")
        assert [r["name"] for r in firing[0]["receivers"]] == ["page"]

        paged = _until(lambda: webhooks.alerts("/page", "APIDown"), 30, "the page notification")
        assert {a["labels"]["instance"] for a in paged} == {instance}
        assert paged[0]["status"] == "firing"
        assert not webhooks.alerts("/chat", "APIDown")
        assert not webhooks.alerts("/digest", "APIDown")
        # Only the stopped service is down; the supervisor did not touch it.
        assert observed.children["content"].pid == pid
        assert next(p.restarts for p in observed.supervisor.processes if p.name == "content") == 0
    finally:
        os.kill(pid, signal.SIGCONT)
