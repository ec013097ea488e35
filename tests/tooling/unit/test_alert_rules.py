"""The alert rules are valid and behave as their unit tests say (Prometheus's own promtool),
the Alertmanager routing is valid (amtool), and every alert has a severity and a runbook section."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

DEPLOY = Path(__file__).parents[3] / "deploy"
RULES = DEPLOY / "prometheus" / "alerts.yml"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: `make ops-tools` installs it (make test does)")
    return path


def _run(*argv: str, cwd: Path) -> str:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_promtool_checks_the_rules_and_the_config() -> None:
    promtool = _tool("promtool")
    assert "SUCCESS" in _run(promtool, "check", "rules", "alerts.yml", cwd=RULES.parent)
    _run(promtool, "check", "config", "prometheus.yml", cwd=RULES.parent)


def test_every_rule_passes_its_unit_tests() -> None:
    promtool = _tool("promtool")
    assert "SUCCESS" in _run(promtool, "test", "rules", "alerts.test.yml", cwd=RULES.parent)


def test_alertmanager_routes_each_severity_to_its_receiver() -> None:
    amtool = _tool("amtool")
    config = DEPLOY / "alertmanager" / "alertmanager.yml"
    _run(amtool, "check-config", str(config), cwd=DEPLOY)
    for severity, receiver in (("P1", "page"), ("P2", "chat"), ("P3", "digest")):
        out = _run(
            amtool, "config", "routes", "test", f"--config.file={config}",
            f"severity={severity}", "alertname=X", cwd=DEPLOY,
        )  # fmt: skip
        assert out.strip() == receiver, (severity, out)


def test_every_alert_has_a_severity_a_runbook_section_and_a_test() -> None:
    rules = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    runbooks = (DEPLOY / "runbooks.md").read_text()
    sections = {h.lower() for h in re.findall(r"^## (\w+)$", runbooks, re.M)}
    tested = (RULES.parent / "alerts.test.yml").read_text()
    names = {r["alert"] for r in rules}
    assert {"APIDown", "HighErrorRate", "HighLatency", "QueueBacklog", "DBConnectionsHigh",
            "DiskUsageHigh", "GuardrailSlow", "LedgerDrift"} <= names  # fmt: skip
    for rule in rules:
        assert rule["labels"]["severity"] in ("P1", "P2", "P3"), rule["alert"]
        anchor = rule["annotations"]["runbook_url"].rsplit("#", 1)[1]
        assert anchor == rule["alert"].lower() and anchor in sections, rule["alert"]
        assert f"alertname: {rule['alert']}" in tested, rule["alert"]
