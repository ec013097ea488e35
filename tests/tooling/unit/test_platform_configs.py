"""The Fly.io and Railway configurations (deploy/fly.toml, deploy/railway/*.toml): every
registered service and the worker is deployed from the repository's Dockerfile with its command,
a health check on its own ports, a restart policy and scaling hints; migrations run once per
deploy. The platforms themselves cannot be reached here: this checks the fields they read."""

from __future__ import annotations

import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest

from services.registry import REGISTRY

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
FIELDS = REGISTRY.settings_type().model_fields
UNITS = (*REGISTRY.names, "worker")
"""Every deployed unit: the services and the worker."""


def _ports(unit: str) -> tuple[int, int]:
    """(gRPC, metrics) default ports of a unit."""
    if unit == "worker":
        return FIELDS["worker_port"].default, FIELDS["metrics_port_worker"].default
    definition = REGISTRY.get(unit)
    return definition.port, definition.metrics_port


def _command(unit: str) -> list[str]:
    """The `betterworld` arguments that run a unit."""
    return ["worker"] if unit == "worker" else ["serve", unit]


def _fly() -> dict[str, Any]:
    return tomllib.loads((DEPLOY / "fly.toml").read_text())


def _for(sections: list[dict[str, Any]], unit: str) -> list[dict[str, Any]]:
    return [s for s in sections if unit in s.get("processes", [])]


def test_fly_builds_the_repositorys_dockerfile_and_migrates_once_per_deploy() -> None:
    fly = _fly()
    assert (DEPLOY / fly["build"]["dockerfile"]).resolve() == ROOT / "Dockerfile"
    assert shlex.split(fly["deploy"]["release_command"]) == ["migrate", "upgrade"]
    assert fly["kill_signal"] == "SIGTERM"
    # Long enough for the 30 s drain after SIGTERM.
    assert int(fly["kill_timeout"].removesuffix("s")) > FIELDS["grace_seconds"].default


def test_fly_runs_every_service_and_the_worker_and_nothing_else() -> None:
    processes = _fly()["processes"]
    assert set(processes) == set(UNITS)
    for unit in UNITS:
        assert shlex.split(processes[unit]) == _command(unit)


@pytest.mark.parametrize("unit", UNITS)
def test_fly_checks_restarts_and_sizes_every_unit(unit: str) -> None:
    fly = _fly()
    grpc_port, metrics_port = _ports(unit)
    checks = [c for c in fly["checks"].values() if unit in c["processes"]]
    http = [c for c in checks if c["type"] == "http"]
    assert [(c["port"], c["path"]) for c in http] == [(metrics_port, "/metrics")]
    (restart,) = _for(fly["restart"], unit)
    assert restart["policy"] in {"always", "on-failure"}
    assert len(_for(fly["vm"], unit)) == 1
    assert [m["port"] for m in _for(fly["metrics"], unit)] == [metrics_port]
    services = _for(fly.get("services", []), unit)
    if unit == "worker":
        assert services == []  # nothing routes to it
        assert [c["port"] for c in checks if c["type"] == "tcp"] == [grpc_port]
        return
    (service,) = services
    assert service["internal_port"] == grpc_port
    assert [p["port"] for p in service["ports"]] == [grpc_port]
    assert service["tcp_checks"], unit  # the proxy routes only to machines that pass
    assert service["min_machines_running"] >= 1
    limits = service["concurrency"]
    assert 0 < limits["soft_limit"] <= limits["hard_limit"]


def test_fly_internal_targets_name_the_process_groups_on_their_ports() -> None:
    env = _fly()["env"]
    for setting, unit in (
        ("CONTENT_INTERNAL_TARGET", "content"),
        ("MISSION_INTERNAL_TARGET", "mission"),
    ):
        host, port = env[setting].rsplit(":", 1)
        assert host == f"{unit}.process.{_fly()['app']}.internal"
        assert int(port) == _ports(unit)[0]


def test_railway_has_one_config_per_unit() -> None:
    assert {p.stem for p in (DEPLOY / "railway").glob("*.toml")} == set(UNITS)


@pytest.mark.parametrize("unit", UNITS)
def test_railway_builds_runs_checks_and_restarts_every_unit(unit: str) -> None:
    path = DEPLOY / "railway" / f"{unit}.toml"
    config = tomllib.loads(path.read_text())
    assert config["build"]["builder"] == "DOCKERFILE"
    assert (ROOT / config["build"]["dockerfilePath"]).resolve() == ROOT / "Dockerfile"
    deploy = config["deploy"]
    # Railway's start command replaces the image's ENTRYPOINT: it names `betterworld` itself.
    assert shlex.split(deploy["startCommand"]) == ["betterworld", *_command(unit)]
    assert deploy["healthcheckPath"] == "/metrics"
    # The check asks PORT, which the comment tells the operator to set to the metrics port.
    assert f"PORT={_ports(unit)[1]}" in path.read_text()
    assert deploy["restartPolicyType"] == "ON_FAILURE"
    assert deploy["restartPolicyMaxRetries"] > 0
    assert deploy["numReplicas"] >= 1
    assert deploy["drainingSeconds"] > FIELDS["grace_seconds"].default


def test_railway_migrates_once_per_deploy() -> None:
    migrating = {
        unit
        for unit in UNITS
        if tomllib.loads((DEPLOY / "railway" / f"{unit}.toml").read_text())["deploy"].get(
            "preDeployCommand"
        )
    }
    assert len(migrating) == 1
    (unit,) = migrating
    config = tomllib.loads((DEPLOY / "railway" / f"{unit}.toml").read_text())
    assert [shlex.split(c) for c in config["deploy"]["preDeployCommand"]] == [
        ["betterworld", "migrate", "upgrade"]
    ]
