"""docs/metrics.md is well formed and lists exactly the metrics our code defines, with their
types and labels; every metric an alert rule reads is catalogued."""

from __future__ import annotations

import importlib
import pkgutil

import pytest
import yaml
from prometheus_client import REGISTRY
from prometheus_client.registry import Collector

import services
from services.core import business_refresh
from services.registry import REGISTRY as SERVICES
from tests.support.metric_catalogue import (
    REPO_ROOT,
    base_name,
    metric_names,
    parse_exposition,
    read_catalogue,
)

ALERTS = REPO_ROOT / "deploy" / "prometheus" / "alerts.yml"


def _defined_metrics() -> dict[str, tuple[str, frozenset[str]]]:
    """Every metric our modules define, as (type, label names), by catalogue name."""
    for module in pkgutil.walk_packages(services.__path__, "services."):
        importlib.import_module(module.name)
    business_refresh.declared(SERVICES.definitions)
    defined: dict[str, tuple[str, frozenset[str]]] = {}
    collectors: list[Collector] = list(REGISTRY._collector_to_names)
    for collector in collectors:
        name = getattr(collector, "_name", None)
        if name is not None:  # a prometheus_client metric (Counter, Gauge, Histogram)
            kind = collector._type  # type: ignore[attr-defined]
            shown = f"{name}_total" if kind == "counter" else name
            labels = frozenset(collector._labelnames)  # type: ignore[attr-defined]
            defined[shown] = (kind, labels)
        elif isinstance(collector, business_refresh.BusinessGaugeCollector):
            for family in collector.collect():
                defined[family.name] = ("gauge", frozenset())
    return defined


def test_the_catalogue_has_two_well_formed_tables() -> None:
    catalogue = read_catalogue()
    assert len(catalogue.ours) >= 30
    assert {"up", "pg_stat_activity_count", "redis_memory_used_bytes"} <= set(catalogue.exporters)


def test_the_catalogue_lists_exactly_the_metrics_our_code_defines() -> None:
    catalogue = read_catalogue().ours
    defined = _defined_metrics()
    # Tests may register metrics of their own in this process: only ours count.
    defined = {
        name: value
        for name, value in defined.items()
        if not name.startswith(("process_", "python_", "test_"))
    }
    missing = sorted(set(defined) - set(catalogue))
    assert not missing, f"defined but not in docs/metrics.md: {missing}"
    stale = sorted(set(catalogue) - set(defined))
    assert not stale, f"in docs/metrics.md but defined nowhere: {stale}"
    for name, (kind, labels) in defined.items():
        entry = catalogue[name]
        assert (entry.type, entry.labels) == (kind, labels), name


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('up{job="betterworld"} == 0', {"up"}),
        (
            "histogram_quantile(0.95, sum by (le, instance) "
            '(rate(grpc_server_handling_seconds_bucket{grpc_type="unary"}[5m]))) > 0.5',
            {"grpc_server_handling_seconds_bucket"},
        ),
        (
            "sum(pg_stat_activity_count) / max(pg_settings_max_connections) > 0.8",
            {"pg_stat_activity_count", "pg_settings_max_connections"},
        ),
        (
            'count(up{job="b"} == 0) or vector(0) + on (instance) group_left (x) a_total',
            {"up", "a_total"},
        ),
        ("rate(x_total[$__rate_interval] offset 1h)", {"x_total"}),
        ("sum without (pid) (y)", {"y"}),
    ],
)
def test_metric_names_are_found_in_promql(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_every_metric_an_alert_reads_is_catalogued() -> None:
    catalogue = read_catalogue().all
    rules = [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]
    read = {name for rule in rules for name in metric_names(rule["expr"])}
    assert read, "no metric found in the alert rules"
    unknown = sorted(name for name in read if base_name(name, catalogue) is None)
    assert not unknown, f"alerts.yml reads metrics docs/metrics.md does not list: {unknown}"


def test_an_exposition_is_read_as_the_catalogue_names_it() -> None:
    text = (
        '# HELP a_total x\n# TYPE a_total counter\na_total{l="1"} 1.0\n'
        '# HELP a_created x\n# TYPE a_created gauge\na_created{l="1"} 1.7e9\n'
        "# HELP h_seconds y\n# TYPE h_seconds histogram\n"
        'h_seconds_bucket{q="g",le="+Inf"} 0.0\nh_seconds_count{q="g"} 0.0\n'
        'h_seconds_sum{q="g"} 0.0\n'
        "# HELP b_total z\n# TYPE b_total counter\n"
        "# HELP g gauge\n# TYPE g gauge\n"
    )
    found = parse_exposition(text)
    assert set(found) == {"a_total", "h_seconds", "b_total", "g"}
    assert found["a_total"].labels == {"l"}
    assert found["h_seconds"].type == "histogram" and found["h_seconds"].labels == {"q"}
    assert found["b_total"].labels is None and found["g"].labels is None
