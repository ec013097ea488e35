"""API health: are the processes up, how much traffic, how many errors, how fast."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from tooling.dashboards.panels import RATE, graph, new_dashboard, row, single

# The status codes HighErrorRate counts as the server's failures (the client's own mistakes,
# such as INVALID_ARGUMENT or NOT_FOUND, are not).
SERVER_ERRORS = 'grpc_code=~"INTERNAL|UNKNOWN|UNAVAILABLE|DATA_LOSS|DEADLINE_EXCEEDED"'
UNARY_BUCKETS = f'rate(grpc_server_handling_seconds_bucket{{grpc_type="unary"}}[{RATE}])'


def dashboard() -> Dashboard:
    """The API health dashboard."""
    return (
        new_dashboard(
            "betterworld-api-health",
            "BetterWorld / API health",
            "Every service and the worker: up, traffic, server errors, latency, rate limits.",
        )
        .with_row(row("Now"))
        .with_panel(
            single(
                "Processes down",
                "Services and worker whose metrics endpoint does not answer (APIDown).",
                'count(up{job="betterworld"} == 0) or vector(0)',
                warn_at=1,
            )
        )
        .with_panel(
            single(
                "Server error ratio (5 m)",
                "Share of RPCs that failed on the server side (HighErrorRate fires above 10 %).",
                f"sum(rate(grpc_server_handled_total{{{SERVER_ERRORS}}}[5m]))"
                " / sum(rate(grpc_server_handled_total[5m]))",
                unit="percentunit",
                warn_at=0.1,
            )
        )
        .with_panel(
            single(
                "p95 latency, unary (5 m)",
                "95th percentile of unary RPC time over all services (HighLatency: 0.5 s).",
                "histogram_quantile(0.95, sum by (le) "
                '(rate(grpc_server_handling_seconds_bucket{grpc_type="unary"}[5m])))',
                unit="s",
                warn_at=0.5,
            )
        )
        .with_panel(
            single(
                "RPCs in flight",
                "RPCs being served now, all services together.",
                "sum(grpc_server_in_flight)",
            )
        )
        .with_row(row("Traffic and errors"))
        .with_panel(
            graph(
                "Requests per second by service",
                "RPCs completed per second, by gRPC service.",
                [
                    (
                        f"sum by (grpc_service) (rate(grpc_server_handled_total[{RATE}]))",
                        "{{grpc_service}}",
                    )
                ],
                unit="reqps",
            )
        )
        .with_panel(
            graph(
                "Non-OK answers per second by code",
                "RPCs that did not answer OK, by status code (client errors included).",
                [
                    (
                        "sum by (grpc_code) "
                        f'(rate(grpc_server_handled_total{{grpc_code!="OK"}}[{RATE}]))',
                        "{{grpc_code}}",
                    )
                ],
                unit="reqps",
            )
        )
        .with_panel(
            graph(
                "Server error ratio by process",
                "Share of each process's RPCs that failed on the server side.",
                [
                    (
                        "sum by (instance) "
                        f"(rate(grpc_server_handled_total{{{SERVER_ERRORS}}}[{RATE}]))"
                        " / sum by (instance) "
                        f"(rate(grpc_server_handled_total[{RATE}]))",
                        "{{instance}}",
                    )
                ],
                unit="percentunit",
                warn_at=0.1,
            )
        )
        .with_panel(
            graph(
                "Processes up",
                "1 while Prometheus scrapes the process, 0 when it does not answer.",
                [('up{job="betterworld"}', "{{instance}}")],
            )
        )
        .with_row(row("Latency"))
        .with_panel(
            graph(
                "Unary latency percentiles",
                "50th, 95th and 99th percentile of unary RPC time, all services.",
                [
                    (f"histogram_quantile({q}, sum by (le) ({UNARY_BUCKETS}))", f"p{label}")
                    for q, label in (("0.5", "50"), ("0.95", "95"), ("0.99", "99"))
                ],
                unit="s",
                warn_at=0.5,
            )
        )
        .with_panel(
            graph(
                "p95 latency of the slowest methods",
                "The ten unary methods with the highest 95th percentile.",
                [
                    (
                        "topk(10, histogram_quantile(0.95, sum by (le, grpc_service, "
                        f"grpc_method) ({UNARY_BUCKETS})))",
                        "{{grpc_method}}",
                    )
                ],
                unit="s",
            )
        )
        .with_panel(
            graph(
                "RPCs in flight by process",
                "RPCs being served now (a climb with flat traffic: something is stuck).",
                [("sum by (instance) (grpc_server_in_flight)", "{{instance}}")],
            )
        )
        .with_panel(
            graph(
                "Rate limits",
                "Requests refused by a rate limit, by bucket, and checks skipped because "
                "Redis did not answer.",
                [
                    (f"sum by (bucket) (rate(ratelimit_rejected_total[{RATE}]))", "{{bucket}}"),
                    (f"sum(rate(ratelimit_unavailable_total[{RATE}]))", "Redis unavailable"),
                ],
                unit="reqps",
            )
        )
        .with_panel(
            graph(
                "Public list pages",
                "Content list pages served from memory (hit, stale) or loaded (miss).",
                [(f"sum by (result) (rate(content_list_cache_total[{RATE}]))", "{{result}}")],
                unit="reqps",
            )
        )
    )
