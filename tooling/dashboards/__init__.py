"""The Grafana dashboards of the mesh, generated from code (`python -m tooling.dashboards`).

Each module builds one dashboard with grafana-foundation-sdk; `render` turns it into the JSON
that Grafana's file provisioning loads from `deploy/grafana/dashboards/`. The committed files are
exactly what the generator writes (a test checks it), and every query names only metrics of the
catalogue, `docs/metrics.md`.
"""

from __future__ import annotations

from tooling.dashboards.render import DASHBOARDS, DASHBOARDS_DIR, render, write_all

__all__ = ["DASHBOARDS", "DASHBOARDS_DIR", "render", "write_all"]
