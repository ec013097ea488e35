"""docker-compose.yml runs exactly the registered services, each on its definition's port."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from services.registry import REGISTRY

COMPOSE = Path(__file__).resolve().parents[3] / "docker-compose.yml"


def _services() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def test_every_registered_service_runs_in_compose_on_its_port_with_a_health_check() -> None:
    services = _services()
    for definition in REGISTRY.definitions:
        entry = services.get(definition.name)
        assert entry is not None, f"docker-compose.yml has no {definition.name} service"
        assert entry["command"] == ["serve", definition.name]
        probe = entry.get("healthcheck", {}).get("test")
        if definition.port != 50051:  # the image's default health check probes 50051
            assert probe[-1] == f"127.0.0.1:{definition.port}", definition.name


def test_compose_serves_nothing_the_registry_does_not_know() -> None:
    serving = {
        name: entry["command"][1]
        for name, entry in _services().items()
        if isinstance(entry.get("command"), list) and entry["command"][:1] == ["serve"]
    }
    assert set(serving.values()) == set(REGISTRY.names)
    envoy_waits_for = set(_services()["envoy"]["depends_on"])
    assert envoy_waits_for == set(REGISTRY.names)
