"""`python -m tooling.dashboards`: writes deploy/grafana/dashboards/*.json from the code."""

from __future__ import annotations

from tooling.dashboards.render import write_all

if __name__ == "__main__":
    for path in write_all():
        print(path)
