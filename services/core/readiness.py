"""ReadinessService: per-dependency readiness, 503 through Envoy when not ready."""

from __future__ import annotations

import time

import grpc
from betterworld.common.v1 import readiness_pb2, readiness_pb2_grpc

from services.core.context import set_response_header
from services.core.health import HealthMonitor
from services.core.settings import VERSION


class ReadinessServicer(readiness_pb2_grpc.ReadinessServiceServicer):
    """Thin adapter over the health monitor's probe."""

    def __init__(self, *, service: str, monitor: HealthMonitor) -> None:
        self._service = service
        self._monitor = monitor
        self._started = time.monotonic()

    async def GetReadiness(  # noqa: N802 (gRPC method name)
        self, request: readiness_pb2.GetReadinessRequest, context: grpc.aio.ServicerContext
    ) -> readiness_pb2.GetReadinessResponse:
        checks = await self._monitor.refresh()
        ready = all(c.ok for c in checks) and not self._monitor.shutting_down
        if not ready:
            set_response_header("x-http-status", "503")
        return readiness_pb2.GetReadinessResponse(
            ready=ready,
            service=self._service,
            version=VERSION,
            uptime_seconds=round(time.monotonic() - self._started, 3),
            checks=[
                readiness_pb2.DependencyCheck(
                    name=c.name, ok=c.ok, latency_ms=round(c.latency_ms, 3), error=c.error
                )
                for c in checks
            ],
        )
