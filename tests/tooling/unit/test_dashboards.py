"""The Grafana dashboards: the committed JSON is what the code generates, every query is valid
PromQL over catalogued metrics, and the provisioning files load them from the right places."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.metric_catalogue import REPO_ROOT, base_name, metric_names, read_catalogue
from tooling.dashboards import DASHBOARDS, DASHBOARDS_DIR, render
from tooling.dashboards.panels import DATASOURCE_UID

GRAFANA = REPO_ROOT / "deploy" / "grafana"


def _dashboards() -> dict[str, dict[str, Any]]:
    return {name: json.loads(render(name)) for name in DASHBOARDS}


def _panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in board["panels"] if p["type"] != "row"]


def _queries() -> list[tuple[str, str, str]]:
    """(dashboard, panel title, expression) of every query."""
    return [
        (name, panel["title"], target["expr"])
        for name, board in _dashboards().items()
        for panel in _panels(board)
        for target in panel["targets"]
    ]


def test_the_committed_dashboards_are_what_the_code_generates() -> None:
    committed = {path.stem for path in DASHBOARDS_DIR.glob("*.json")}
    assert committed == set(DASHBOARDS), "run `python -m tooling.dashboards`"
    for name in DASHBOARDS:
        on_disk = (DASHBOARDS_DIR / f"{name}.json").read_text()
        assert on_disk == render(name), f"{name}.json is stale: run `python -m tooling.dashboards`"


def test_the_plan_s_dashboards_exist_with_unique_uids_and_titles() -> None:
    boards = _dashboards()
    assert set(boards) == {"api-health", "queues", "database", "business"}
    uids = [board["uid"] for board in boards.values()]
    titles = [board["title"] for board in boards.values()]
    assert len(set(uids)) == len(uids) and all(uids)
    assert len(set(titles)) == len(titles) and all(titles)
    for board in boards.values():
        ids = [panel["id"] for panel in board["panels"]]
        assert len(set(ids)) == len(ids), board["uid"]
        assert len(_panels(board)) >= 6, board["uid"]


def test_every_panel_reads_the_provisioned_prometheus() -> None:
    provisioned = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"]
    (prometheus,) = [d for d in provisioned if d["type"] == "prometheus"]
    assert prometheus["uid"] == DATASOURCE_UID
    assert prometheus["url"] == "http://prometheus:9090"
    for board in _dashboards().values():
        for panel in _panels(board):
            assert panel["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}
            refs = [target["refId"] for target in panel["targets"]]
            assert refs and len(set(refs)) == len(refs), panel["title"]


def test_grafana_loads_the_dashboards_from_the_mounted_directory() -> None:
    providers = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "dashboards.yml").read_text()
    )["providers"]
    (provider,) = providers
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


def test_every_query_names_only_catalogued_metrics() -> None:
    catalogue = read_catalogue().all
    unknown = [
        (board, title, name)
        for board, title, expr in _queries()
        for name in metric_names(expr)
        if base_name(name, catalogue) is None
    ]
    assert not unknown, f"queries name metrics docs/metrics.md does not list: {unknown}"
    used = {base_name(n, catalogue) for _, _, expr in _queries() for n in metric_names(expr)}
    # The business figures and the job durations are what these dashboards are for.
    assert {
        "job_duration_seconds",
        "betterworld_active_agents_24h",
        "betterworld_problems_today",
        "betterworld_approval_rate_24h",
        "betterworld_missions_completed_week",
        "betterworld_tokens_distributed_week",
    } <= used


def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses each expression as a recording rule (Grafana's $__rate_interval becomes
    a plain range, as Grafana substitutes it)."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is missing: `make ops-tools` installs it (make test does)")
    rules = [
        {"record": f"dashboard:query_{i}", "expr": expr.replace("$__rate_interval", "1m")}
        for i, (_, _, expr) in enumerate(_queries())
    ]
    path = tmp_path / "dashboard_queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    done = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
