"""`serve --processes N`: N service processes, each on its own port, one metrics endpoint for all.

Each child is a normal `serve` process (its own event loop on its own core) on its port from
`process_ports`; its callers (Envoy, internal channels) balance requests over the ports. The
parent only supervises: it forwards SIGTERM/SIGINT
(children drain as usual), serves the children's metrics aggregated through prometheus_client's
multiprocess mode, and exits when they have all exited. A child that dies unexpectedly stops the
group with a non-zero exit so the process manager restarts it whole.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from wsgiref.simple_server import WSGIServer

from services.core.logging import get_logger
from services.core.process_ports import process_ports
from services.core.settings import Settings

log = get_logger(__name__)


def _metrics_server(host: str, port: int, directory: str) -> WSGIServer | None:
    if not port:
        return None
    # Imported here: the parent must not create its own value files in the shared directory.
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)
    server, _ = start_http_server(port, addr=host, registry=registry)
    return server


def serve_processes(service: str, settings: Settings, *, processes: int, port: int | None) -> int:
    """Runs `processes` children of `service` until SIGTERM/SIGINT, child i on the i-th port of
    `process_ports(port, processes)`."""
    grpc_port, metrics_port = settings.service_ports(service)
    try:
        ports = process_ports(grpc_port if port is None else port, processes)
    except ValueError as exc:
        raise SystemExit(f"--processes: {exc}") from None
    with tempfile.TemporaryDirectory(prefix=f"bw-{service}-metrics-") as directory:
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": directory}
        argv = [sys.executable, "-m", "tooling.cli", "serve", service, "--group-member"]
        children = [
            subprocess.Popen([*argv, "--port", str(child_port)], env=env) for child_port in ports
        ]
        metrics = _metrics_server(settings.host, metrics_port, directory)
        stopping = False

        def forward(signum: int, frame: object) -> None:
            nonlocal stopping
            stopping = True
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)

        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
        log.info("process_group_started", service=service, ports=list(ports))
        exit_code = 0
        while any(child.poll() is None for child in children):
            for child in children:
                if child.poll() not in (None, 0) and not stopping:
                    log.error("child_exited", pid=child.pid, code=child.returncode)
                    exit_code = 1
                    forward(signal.SIGTERM, None)
            time.sleep(0.2)
        if metrics is not None:
            metrics.shutdown()
        return exit_code or max((child.returncode or 0) for child in children)
