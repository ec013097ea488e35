"""`betterworld up --observe`: Prometheus, Alertmanager and the PostgreSQL and Redis exporters
(Debian's packages) as local processes, over the configuration files compose mounts.

`deploy/prometheus/prometheus.yml` names compose's hosts (`agent:9101`, `alertmanager:9093`);
the local copy keeps everything else in it and rewrites only those addresses to this machine's ports
from the settings (a service's `METRICS_PORT_<NAME>`, `ALERTMANAGER_PORT`, ...), so the file stays
the one list of what is scraped. Alertmanager's routing is `deploy/alertmanager/alertmanager.yml`
with each receiver's webhook from the settings (`ALERT_<RECEIVER>_WEBHOOK_URL`) when set. The
generated copies and the data live under `DATA_DIR/observe`.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx
import yaml
from pydantic import SecretStr

from services.core.process_ports import format_host
from services.core.settings import Settings
from services.registry import REGISTRY

DEPLOY_DIR = Path(__file__).resolve().parents[1] / "deploy"
PROMETHEUS_CONFIG = DEPLOY_DIR / "prometheus" / "prometheus.yml"
ALERTMANAGER_CONFIG = DEPLOY_DIR / "alertmanager" / "alertmanager.yml"

BINARIES = {
    "node-exporter": "prometheus-node-exporter",
    "postgres-exporter": "prometheus-postgres-exporter",
    "redis-exporter": "prometheus-redis-exporter",
    "alertmanager": "prometheus-alertmanager",
    "prometheus": "prometheus",
}
"""Process name → Debian's binary, in start order (Prometheus last: what it scrapes and where it
sends alerts are up by then)."""

_READY_TIMEOUT_SECONDS = 30
_RETENTION = "7d"


class ObserveError(RuntimeError):
    """The observability stack cannot be configured or started."""


@dataclass(frozen=True)
class ObserveOptions:
    """What may differ from the files in a run (the alerting e2e test shortens the timings)."""

    scrape_interval: str | None = None
    """Replaces the global scrape interval (and timeout) of prometheus.yml, e.g. "1s"."""
    evaluation_interval: str | None = None
    """Replaces the global rule evaluation interval of prometheus.yml."""
    alert_for: Mapping[str, str] = field(default_factory=dict)
    """Alert name → its `for:` duration; the rules are otherwise those of alerts.yml."""


@dataclass(frozen=True)
class Monitor:
    """One process of the observability stack."""

    name: str
    argv: list[str]
    env: dict[str, str]
    health_url: str
    """Answers 200 while the process works (`betterworld status` asks it)."""


def local_ports(settings: Settings) -> dict[str, int]:
    """Compose's host names → the ports of the same processes on this machine."""
    ports = {name: settings.service_ports(name)[1] for name in REGISTRY.names}
    ports.update(
        {
            "worker": settings.metrics_port_worker,
            "node-exporter": settings.node_exporter_port,
            "postgres-exporter": settings.postgres_exporter_port,
            "redis-exporter": settings.redis_exporter_port,
            "alertmanager": settings.alertmanager_port,
            "prometheus": settings.prometheus_port,
        }
    )
    return ports


def _local_address(target: str, settings: Settings, ports: Mapping[str, int]) -> str | None:
    host = target.rsplit(":", 1)[0]
    if host not in ports:
        raise ObserveError(
            f"{PROMETHEUS_CONFIG.name} names {target!r}, which the local stack does not run "
            f"(it knows {', '.join(sorted(ports))})"
        )
    port = ports[host]
    return None if port == 0 else f"{format_host(settings.host)}:{port}"


def _rewrite_static_configs(
    configs: list[dict[str, Any]], settings: Settings, ports: Mapping[str, int]
) -> None:
    for static in configs:
        targets = [_local_address(t, settings, ports) for t in static.get("targets", [])]
        # A metrics port of 0 is switched off: nothing to scrape there.
        static["targets"] = [t for t in targets if t is not None]


def render_prometheus_config(
    settings: Settings, *, rule_files: list[Path], options: ObserveOptions | None = None
) -> dict[str, Any]:
    """prometheus.yml with this machine's addresses, the given rule files and the options'
    timings; everything else (jobs, labels, alerting) as the file says."""
    options = options or ObserveOptions()
    config: dict[str, Any] = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    ports = local_ports(settings)
    for scrape in config.get("scrape_configs", []):
        _rewrite_static_configs(scrape.get("static_configs", []), settings, ports)
    for alertmanager in config.get("alerting", {}).get("alertmanagers", []):
        _rewrite_static_configs(alertmanager.get("static_configs", []), settings, ports)
    config["rule_files"] = [str(path) for path in rule_files]
    timings = config.setdefault("global", {})
    if options.scrape_interval:
        timings["scrape_interval"] = options.scrape_interval
        timings["scrape_timeout"] = options.scrape_interval
    if options.evaluation_interval:
        timings["evaluation_interval"] = options.evaluation_interval
    return config


def source_rule_files() -> list[Path]:
    """The rule files prometheus.yml loads, as absolute paths."""
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    return [PROMETHEUS_CONFIG.parent / name for name in config.get("rule_files", [])]


def render_rules(path: Path, alert_for: Mapping[str, str]) -> dict[str, Any]:
    """A rule file with the `for:` of the named alerts replaced; expressions, labels and
    annotations stay as written."""
    rules: dict[str, Any] = yaml.safe_load(path.read_text())
    for group in rules.get("groups", []):
        for rule in group.get("rules", []):
            if rule.get("alert") in alert_for:
                rule["for"] = alert_for[rule["alert"]]
    return rules


def alert_names(paths: list[Path]) -> set[str]:
    """The alerts the rule files define."""
    return {
        rule["alert"]
        for path in paths
        for group in yaml.safe_load(path.read_text()).get("groups", [])
        for rule in group.get("rules", [])
        if "alert" in rule
    }


def render_alertmanager_config(settings: Settings) -> dict[str, Any]:
    """alertmanager.yml with each receiver's webhook URL from ALERT_<RECEIVER>_WEBHOOK_URL when
    that setting is set (the file's URL otherwise)."""
    config: dict[str, Any] = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    for receiver in config.get("receivers", []):
        setting = receiver_setting(receiver["name"])
        if not hasattr(settings, setting):
            raise ObserveError(
                f"receiver {receiver['name']!r} of {ALERTMANAGER_CONFIG.name} has no setting "
                f"{setting.upper()}"
            )
        url = getattr(settings, setting)
        if url is None:
            continue
        webhooks = receiver.get("webhook_configs", [])
        if len(webhooks) != 1:
            raise ObserveError(f"receiver {receiver['name']!r} needs exactly one webhook_config")
        webhooks[0]["url"] = url.get_secret_value() if isinstance(url, SecretStr) else str(url)
    return config


def receiver_setting(receiver: str) -> str:
    """The setting that holds a receiver's webhook URL."""
    return f"alert_{receiver.replace('-', '_')}_webhook_url"


def missing_binaries() -> list[str]:
    """Debian's binaries that are not installed (`make ops-tools` installs them)."""
    return [binary for binary in BINARIES.values() if shutil.which(binary) is None]


def _dump(path: Path, content: dict[str, Any]) -> Path:
    """Writes a generated file readable by this user only (receivers' URLs carry tokens)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(
        "# Generated by `betterworld up --observe` from deploy/; edits are overwritten.\n"
        + yaml.safe_dump(content, sort_keys=False)
    )
    return path


def _redis_exporter_address(redis_url: str) -> tuple[str, dict[str, str]]:
    """The exporter's address without credentials, and the credentials as its environment
    variables (a password in argv would show in every process listing)."""
    parts = urlsplit(redis_url)
    credentials = {}
    if parts.username:
        credentials["REDIS_USER"] = unquote(parts.username)
    if parts.password:
        credentials["REDIS_PASSWORD"] = unquote(parts.password)
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=netloc)), credentials


def _url(settings: Settings, port: int, path: str) -> str:
    return f"http://{format_host(settings.host)}:{port}{path}"


def prepare(
    settings: Settings,
    directory: Path,
    *,
    postgres_dsn: str,
    redis_url: str,
    options: ObserveOptions | None = None,
) -> list[Monitor]:
    """Writes the configurations under `directory` and returns the processes to start."""
    options = options or ObserveOptions()
    missing = missing_binaries()
    if missing:
        raise ObserveError(f"{', '.join(missing)} not installed: run `make ops-tools` (as root)")
    if not PROMETHEUS_CONFIG.exists() or not ALERTMANAGER_CONFIG.exists():
        raise ObserveError(f"no {DEPLOY_DIR}: --observe runs from a checkout of the repository")
    rules = source_rule_files()
    if options.alert_for:
        unknown = set(options.alert_for) - alert_names(rules)
        if unknown:
            raise ObserveError(f"no such alerts: {', '.join(sorted(unknown))}")
        rules = [
            _dump(directory / "rules" / path.name, render_rules(path, options.alert_for))
            for path in rules
        ]
    prometheus_config = _dump(
        directory / "prometheus.yml",
        render_prometheus_config(settings, rule_files=rules, options=options),
    )
    alertmanager_config = _dump(
        directory / "alertmanager.yml", render_alertmanager_config(settings)
    )
    host = format_host(settings.host)
    # The Go binaries need none of the stack's settings (secrets among them): only PATH, and
    # the exporter its database.
    base_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    separator = "&" if "?" in postgres_dsn else "?"
    redis_address, redis_credentials = _redis_exporter_address(redis_url)
    monitors = [
        Monitor(
            "node-exporter",
            [
                BINARIES["node-exporter"],
                f"--web.listen-address={host}:{settings.node_exporter_port}",
                # Only what the alerts read (the disks) and the basics of the machine.
                "--collector.disable-defaults",
                "--collector.filesystem",
                "--collector.cpu",
                "--collector.meminfo",
                "--collector.loadavg",
            ],
            base_env,
            _url(settings, settings.node_exporter_port, "/"),
        ),
        Monitor(
            "postgres-exporter",
            [
                BINARIES["postgres-exporter"],
                f"--web.listen-address={host}:{settings.postgres_exporter_port}",
            ],
            {**base_env, "DATA_SOURCE_NAME": f"{postgres_dsn}{separator}sslmode=disable"},
            _url(settings, settings.postgres_exporter_port, "/"),
        ),
        Monitor(
            "redis-exporter",
            [
                BINARIES["redis-exporter"],
                f"-web.listen-address={host}:{settings.redis_exporter_port}",
                f"-redis.addr={redis_address}",
            ],
            {**base_env, **redis_credentials},
            _url(settings, settings.redis_exporter_port, "/"),
        ),
        Monitor(
            "alertmanager",
            [
                BINARIES["alertmanager"],
                f"--config.file={alertmanager_config}",
                f"--storage.path={directory / 'alertmanager-data'}",
                f"--web.listen-address={host}:{settings.alertmanager_port}",
                f"--web.external-url={_url(settings, settings.alertmanager_port, '')}",
                # One Alertmanager, no peers: the gossip port would otherwise listen on all
                # interfaces.
                "--cluster.listen-address=",
            ],
            base_env,
            _url(settings, settings.alertmanager_port, "/-/healthy"),
        ),
        Monitor(
            "prometheus",
            [
                BINARIES["prometheus"],
                f"--config.file={prometheus_config}",
                f"--storage.tsdb.path={directory / 'prometheus-data'}",
                f"--storage.tsdb.retention.time={_RETENTION}",
                f"--web.listen-address={host}:{settings.prometheus_port}",
                f"--web.external-url={_url(settings, settings.prometheus_port, '')}",
            ],
            base_env,
            _url(settings, settings.prometheus_port, "/-/healthy"),
        ),
    ]
    return monitors


def wait_ready(settings: Settings, timeout: float = _READY_TIMEOUT_SECONDS) -> None:
    """Waits until Prometheus and Alertmanager answer /-/ready."""
    urls = [
        _url(settings, settings.alertmanager_port, "/-/ready"),
        _url(settings, settings.prometheus_port, "/-/ready"),
    ]
    deadline = time.monotonic() + timeout
    for url in urls:
        while True:
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise ObserveError(f"{url} did not answer within {timeout:.0f} s")
            time.sleep(0.2)


def endpoints(settings: Settings) -> str:
    """The lines `betterworld up --observe` prints."""
    return (
        f"  Prometheus           {_url(settings, settings.prometheus_port, '')}"
        f"   (rules: {_url(settings, settings.prometheus_port, '/alerts')})\n"
        f"  Alertmanager         {_url(settings, settings.alertmanager_port, '')}\n"
        f"  exporters            {_url(settings, settings.postgres_exporter_port, '/metrics')}"
        f"   {_url(settings, settings.redis_exporter_port, '/metrics')}"
    )
