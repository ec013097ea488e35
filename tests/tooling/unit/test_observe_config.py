"""`betterworld up --observe` runs compose's Prometheus and Alertmanager files: prometheus.yml
names every registered service, the local copy differs from it only in addresses (and the
timings a run asks for), and the receivers' webhooks come from the settings."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.registry import REGISTRY
from tests.support.e2e_stack import isolated_stack_settings
from tooling import observe
from tooling.cli import main
from tooling.observe import ObserveError, ObserveOptions

Settings = REGISTRY.settings_type()


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: `make ops-tools` installs it (make test does)")
    return path


def _run(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _source() -> dict[str, Any]:
    return yaml.safe_load(observe.PROMETHEUS_CONFIG.read_text())


def _targets(config: dict[str, Any], job: str) -> list[str]:
    scrape = next(s for s in config["scrape_configs"] if s["job_name"] == job)
    return [t for static in scrape["static_configs"] for t in static["targets"]]


def test_compose_scrapes_every_registered_service_and_the_worker_on_its_metrics_port() -> None:
    defaults = Settings.model_fields
    expected = {f"{name}:{metrics}" for name, (_, metrics) in REGISTRY.default_ports().items()}
    expected.add(f"worker:{defaults['metrics_port_worker'].default}")
    source = _source()
    assert set(_targets(source, "betterworld")) == expected
    # The local processes default to the ports compose's containers use.
    assert _targets(source, "postgres") == [
        f"postgres-exporter:{defaults['postgres_exporter_port'].default}"
    ]
    assert _targets(source, "redis") == [
        f"redis-exporter:{defaults['redis_exporter_port'].default}"
    ]
    assert _targets(source, "node") == [f"node-exporter:{defaults['node_exporter_port'].default}"]
    alerting = source["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert alerting == [f"alertmanager:{defaults['alertmanager_port'].default}"]


def test_the_local_copy_differs_only_in_addresses_rules_and_timings(tmp_path: Path) -> None:
    settings = isolated_stack_settings(tmp_path)
    rules = observe.source_rule_files()
    local = observe.render_prometheus_config(
        settings, rule_files=rules, options=ObserveOptions(scrape_interval="2s")
    )
    source = _source()
    assert set(_targets(local, "betterworld")) == {
        f"127.0.0.1:{settings.service_ports(name)[1]}" for name in REGISTRY.names
    } | {f"127.0.0.1:{settings.metrics_port_worker}"}
    assert _targets(local, "postgres") == [f"127.0.0.1:{settings.postgres_exporter_port}"]
    assert _targets(local, "redis") == [f"127.0.0.1:{settings.redis_exporter_port}"]
    assert _targets(local, "node") == [f"127.0.0.1:{settings.node_exporter_port}"]
    assert local["global"] == {
        **source["global"],
        "scrape_interval": "2s",
        "scrape_timeout": "2s",
    }
    assert local["rule_files"] == [str(p) for p in rules]
    assert [p.name for p in rules] == source["rule_files"]

    def without_addresses(config: dict[str, Any]) -> dict[str, Any]:
        stripped = yaml.safe_load(yaml.safe_dump(config))
        for scrape in stripped["scrape_configs"]:
            for static in scrape["static_configs"]:
                static["targets"] = len(static["targets"])
        stripped["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = 1
        for key in ("global", "rule_files"):
            stripped.pop(key)
        return stripped

    assert without_addresses(local) == without_addresses(source)

    written = tmp_path / "prometheus.yml"
    written.write_text(yaml.safe_dump(local))
    assert "SUCCESS" in _run(_tool("promtool"), "check", "config", str(written))


def test_a_switched_off_metrics_port_is_not_scraped(tmp_path: Path) -> None:
    settings = isolated_stack_settings(tmp_path, metrics_port_worker=0)
    local = observe.render_prometheus_config(settings, rule_files=[])
    assert len(_targets(local, "betterworld")) == len(REGISTRY.names)


def test_a_target_the_local_stack_does_not_run_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _source()
    config["scrape_configs"].append(
        {"job_name": "blackbox", "static_configs": [{"targets": ["blackbox-exporter:9115"]}]}
    )
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setattr(observe, "PROMETHEUS_CONFIG", path)
    with pytest.raises(ObserveError, match="blackbox-exporter:9115"):
        observe.render_prometheus_config(isolated_stack_settings(tmp_path), rule_files=[])


def test_a_rendered_rule_keeps_its_expression_and_changes_only_its_for(tmp_path: Path) -> None:
    source = observe.source_rule_files()[0]
    rendered = observe.render_rules(source, {"APIDown": "3s"})
    original = yaml.safe_load(source.read_text())
    changed = [
        (before, after)
        for group_before, group_after in zip(original["groups"], rendered["groups"], strict=True)
        for before, after in zip(group_before["rules"], group_after["rules"], strict=True)
        if before != after
    ]
    assert len(changed) == 1
    before, after = changed[0]
    assert after == {**before, "for": "3s"} and before["alert"] == "APIDown"


def test_an_unknown_alert_cannot_be_shortened(tmp_path: Path) -> None:
    with pytest.raises(ObserveError, match="NoSuchAlert"):
        observe.prepare(
            isolated_stack_settings(tmp_path),
            tmp_path / "observe",
            postgres_dsn="postgresql://betterworld@127.0.0.1:1/betterworld",
            redis_url="redis://127.0.0.1:1/0",
            options=ObserveOptions(alert_for={"NoSuchAlert": "1s"}),
        )


def test_every_receiver_has_a_webhook_setting() -> None:
    config = yaml.safe_load(observe.ALERTMANAGER_CONFIG.read_text())
    for receiver in config["receivers"]:
        assert observe.receiver_setting(receiver["name"]) in Settings.model_fields


def test_receivers_webhooks_come_from_the_settings_and_route_by_severity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    for name in ("page", "chat", "digest"):
        monkeypatch.delenv(f"ALERT_{name.upper()}_WEBHOOK_URL", raising=False)
    monkeypatch.setenv("ALERT_PAGE_WEBHOOK_URL", "https://pager.example.org/hook/secret")
    monkeypatch.setenv("ALERT_CHAT_WEBHOOK_URL", "https://chat.example.org/hook/secret")
    rendered = tmp_path / "alertmanager.yml"
    assert main(["alertmanager-config", "-o", str(rendered)]) == 0
    config = yaml.safe_load(rendered.read_text())
    source = yaml.safe_load(observe.ALERTMANAGER_CONFIG.read_text())
    urls = {r["name"]: r["webhook_configs"][0]["url"] for r in config["receivers"]}
    assert urls == {
        "page": "https://pager.example.org/hook/secret",
        "chat": "https://chat.example.org/hook/secret",
        # Unset: the file's own.
        "digest": next(r for r in source["receivers"] if r["name"] == "digest")["webhook_configs"][
            0
        ]["url"],
    }
    assert config["route"] == source["route"]
    amtool = _tool("amtool")
    _run(amtool, "check-config", str(rendered))
    for severity, receiver in (("P1", "page"), ("P2", "chat"), ("P3", "digest")):
        out = _run(
            amtool, "config", "routes", "test", f"--config.file={rendered}",
            f"severity={severity}", "alertname=X",
        )  # fmt: skip
        assert out.strip() == receiver


def test_database_credentials_reach_the_exporters_outside_their_argv(tmp_path: Path) -> None:
    monitors = {
        m.name: m
        for m in observe.prepare(
            isolated_stack_settings(tmp_path),
            tmp_path / "observe",
            postgres_dsn="postgresql://betterworld:pg-secret@127.0.0.1:1/betterworld",
            redis_url="redis://:redis-secret@127.0.0.1:2/0",
        )
    }
    assert list(monitors) == list(observe.BINARIES)
    for monitor in monitors.values():
        assert not any("secret" in arg for arg in monitor.argv), monitor.argv
        assert monitor.health_url.startswith("http://127.0.0.1:")
    assert monitors["redis-exporter"].env["REDIS_PASSWORD"] == "redis-secret"
    assert "-redis.addr=redis://127.0.0.1:2/0" in monitors["redis-exporter"].argv
    assert monitors["postgres-exporter"].env["DATA_SOURCE_NAME"] == (
        "postgresql://betterworld:pg-secret@127.0.0.1:1/betterworld?sslmode=disable"
    )
    # The stack's own settings (its secrets among them) are not handed to these processes.
    assert "JWT_SECRET" not in monitors["prometheus"].env
