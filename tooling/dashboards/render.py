"""Dashboards to JSON files: what `python -m tooling.dashboards` writes."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path

from grafana_foundation_sdk.builders.dashboard import Dashboard
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from tooling.dashboards import api_health, business, database, queues

DASHBOARDS_DIR = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboards"
"""Where Grafana's file provisioning finds them (mounted at /var/lib/grafana/dashboards)."""

DASHBOARDS: Mapping[str, Callable[[], Dashboard]] = {
    "api-health": api_health.dashboard,
    "queues": queues.dashboard,
    "database": database.dashboard,
    "business": business.dashboard,
}
"""File name (without .json) → the dashboard's builder."""


def render(name: str) -> str:
    """The JSON of one dashboard: stable (sorted keys), panels numbered in order."""
    model = json.loads(json.dumps(DASHBOARDS[name]().build(), cls=JSONEncoder))
    for number, panel in enumerate(model.get("panels", []), start=1):
        panel["id"] = number
    return json.dumps(model, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_all(directory: Path = DASHBOARDS_DIR) -> list[Path]:
    """Writes every dashboard to `directory`/<name>.json; returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in DASHBOARDS:
        path = directory / f"{name}.json"
        path.write_text(render(name))
        written.append(path)
    return written
