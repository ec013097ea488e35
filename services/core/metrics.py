"""Prometheus metrics of the gRPC server (go-grpc-prometheus names) and their HTTP endpoint."""

from __future__ import annotations

import threading
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import Counter, Gauge, Histogram, start_http_server

GRPC_STARTED = Counter(
    "grpc_server_started_total",
    "RPCs started on the server",
    ["grpc_type", "grpc_service", "grpc_method"],
)
GRPC_HANDLED = Counter(
    "grpc_server_handled_total",
    "RPCs completed on the server, by status code",
    ["grpc_type", "grpc_service", "grpc_method", "grpc_code"],
)
GRPC_HANDLING_SECONDS = Histogram(
    "grpc_server_handling_seconds",
    "Time to handle an RPC on the server",
    ["grpc_type", "grpc_service", "grpc_method"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


GRPC_IN_FLIGHT = Gauge(
    "grpc_server_in_flight", "RPCs being served now", ["grpc_type", "grpc_service"]
)
DB_POOL = Gauge(
    "db_pool_connections",
    "The process's database pool: connections checked out (in_use) and its size (size, the "
    "persistent ones; overflow, the extra ones open now)",
    ["state"],
)


def watch_pool(pool: Any) -> None:
    """Exports the pool's figures, read at each scrape (a few attribute reads)."""
    DB_POOL.labels("in_use").set_function(pool.checkedout)
    DB_POOL.labels("size").set_function(pool.size)
    DB_POOL.labels("overflow").set_function(lambda: max(pool.overflow(), 0))


def split_method(full_method: str) -> tuple[str, str]:
    """'/pkg.Service/Method' → ('pkg.Service', 'Method')."""
    _, service, method = full_method.split("/", 2)
    return service, method


class MetricsEndpoint:
    """The /metrics HTTP server of one process."""

    def __init__(self, server: WSGIServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self._server.server_port)

    def close(self) -> None:
        """Stops serving."""
        self._server.shutdown()
        self._server.server_close()


def start_metrics_endpoint(host: str, port: int) -> MetricsEndpoint:
    """Serves the default registry on host:port in a daemon thread."""
    server, thread = start_http_server(port, addr=host)
    return MetricsEndpoint(server, thread)
