"""The few panel shapes the dashboards use, all on the provisioned Prometheus datasource."""

from __future__ import annotations

from collections.abc import Sequence

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import DataSourceRef, Threshold, ThresholdsMode

DATASOURCE_UID = "prometheus"
"""The uid of the Prometheus datasource in deploy/grafana/provisioning/datasources/."""
DATASOURCE = DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID)
RATE = "$__rate_interval"
"""Grafana's rate window: at least four scrape intervals, whatever the zoom."""

Query = tuple[str, str]
"""(PromQL expression, legend format)."""


def _targets(queries: Sequence[Query]) -> list[prometheus.Dataquery]:
    return [
        prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(chr(ord("A") + i))
        for i, (expr, legend) in enumerate(queries)
    ]


def _thresholds(warn_at: float | None) -> dashboard.ThresholdsConfig:
    steps = [Threshold(value=None, color="green")]
    if warn_at is not None:
        steps.append(Threshold(value=warn_at, color="red"))
    return dashboard.ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(steps)


def graph(
    title: str,
    description: str,
    queries: Sequence[Query],
    *,
    unit: str = "short",
    warn_at: float | None = None,
    width: int = 12,
) -> timeseries.Panel:
    """A time series of one or more queries; `warn_at` draws the alert's threshold."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(8)
        .fill_opacity(10)
        .legend(
            common_builders.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
        .thresholds(_thresholds(warn_at))
    )
    if warn_at is not None:
        panel = panel.thresholds_style(
            common_builders.GraphThresholdsStyleConfig().mode(common.GraphTresholdsStyleMode.LINE)
        )
    for target in _targets(queries):
        panel = panel.with_target(target)
    return panel


def single(
    title: str,
    description: str,
    expr: str,
    *,
    unit: str = "short",
    warn_at: float | None = None,
    width: int = 6,
) -> stat.Panel:
    """One number (the last value) with a sparkline; red from `warn_at`."""
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(4)
        .graph_mode(common.BigValueGraphMode.AREA)
        .color_mode(common.BigValueColorMode.VALUE)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]))
        .thresholds(_thresholds(warn_at))
    )
    for target in _targets([(expr, title)]):
        panel = panel.with_target(target)
    return panel


def new_dashboard(uid: str, title: str, description: str) -> dashboard.Dashboard:
    """A dashboard with the mesh's common settings (tag, refresh, time range, UTC)."""
    return (
        dashboard.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["betterworld"])
        .refresh("30s")
        .time("now-6h", "now")
        .timezone("utc")
        .readonly()
    )


def row(title: str) -> dashboard.Row:
    """A section heading."""
    return dashboard.Row(title)
