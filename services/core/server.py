"""The one server lifecycle every service uses: build, start, serve, drain on SIGTERM, close."""

from __future__ import annotations

import asyncio
import gc
import signal

import grpc
from betterworld.common.v1 import readiness_pb2, readiness_pb2_grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from services.core.definition import ServiceDefinition
from services.core.error_tracking import start_error_tracking, stop_error_tracking
from services.core.health import DependencyProbe, HealthMonitor
from services.core.interceptors import (
    AuthInterceptor,
    RateLimitInterceptor,
    RequestContextInterceptor,
)
from services.core.logging import get_logger
from services.core.metrics import MetricsEndpoint, start_metrics_endpoint
from services.core.policy import PUBLIC_UNLIMITED, MethodPolicy, policies_of
from services.core.readiness import ReadinessServicer
from services.core.runtime import Runtime

log = get_logger(__name__)

MAX_METADATA_BYTES = 64 * 1024

# Health is grpc's own contract; readiness declares its policy in ours.
_BUILTIN_POLICIES: dict[str, MethodPolicy] = {
    "/grpc.health.v1.Health/Check": PUBLIC_UNLIMITED,
    **policies_of(readiness_pb2.DESCRIPTOR.services_by_name.values()),
}


def freeze_startup_objects() -> None:
    """Moves everything allocated so far out of the garbage collector's generations.

    Modules, descriptors and the runtime live as long as the process, yet every full
    collection walked all of them (about 110,000 objects) and stalled the event loop for
    70-90 ms; under load that alone made the p99 of cached list pages 47-56 ms instead of
    16-18 ms. Frozen, they are never scanned again, and full collections take a few ms.
    """
    gc.collect()
    gc.freeze()


class ServiceServer:
    """A started service: its gRPC server, health monitor and metrics endpoint."""

    def __init__(
        self,
        definition: ServiceDefinition,
        runtime: Runtime,
        *,
        host: str,
        port: int,
        metrics_port: int = 0,
        reuse_port: bool = False,
    ) -> None:
        self.definition = definition
        self.runtime = runtime
        self._host = host
        self._requested_port = port
        self._metrics_port = metrics_port
        self.port = 0
        settings = runtime.settings
        policies = {**_BUILTIN_POLICIES, **definition.policies}
        streaming = definition.streaming_methods
        self.server = grpc.aio.server(
            interceptors=[
                RequestContextInterceptor(service=definition.name, streaming=streaming),
                AuthInterceptor(
                    authenticator=runtime.authenticator,
                    policies=policies,
                    limiter=runtime.limiter,
                    failures_per_ip=settings.rate_limit_public_per_ip,
                    streaming=streaming,
                ),
                RateLimitInterceptor(
                    limiter=runtime.limiter,
                    policies=policies,
                    auth_per_ip=settings.rate_limit_auth_per_ip,
                    public_per_ip=settings.rate_limit_public_per_ip,
                    content_per_agent=settings.rate_limit_content_per_agent,
                    streaming=streaming,
                    auth_exempt_ips=frozenset(settings.rate_limit_auth_exempt_ips),
                ),
            ],
            options=[
                ("grpc.max_receive_message_length", definition.max_message_bytes),
                # Envoy forwards up to 16 KiB of request headers plus x-envoy-original-path;
                # the gRPC default (8 KiB soft, 16 KiB hard) would turn long URLs into errors.
                ("grpc.max_metadata_size", MAX_METADATA_BYTES),
                ("grpc.so_reuseport", 1 if reuse_port else 0),
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
            ],
        )
        self._health = health.aio.HealthServicer()  # type: ignore[attr-defined]
        self.monitor = HealthMonitor(
            servicer=self._health,
            probe=DependencyProbe(engine=runtime.engine, redis=runtime.redis),
            service_names=list(definition.grpc_services),
            interval_seconds=settings.health_check_interval_seconds,
        )
        self._metrics: MetricsEndpoint | None = None
        self._background: list[asyncio.Task[None]] = []
        self._error_tracking = False

    async def start(self) -> int:
        """Binds, registers everything and starts serving; returns the bound port."""
        definition = self.definition
        definition.register(self.server, self.runtime)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self.server)
        readiness_pb2_grpc.add_ReadinessServiceServicer_to_server(
            ReadinessServicer(service=definition.name, monitor=self.monitor), self.server
        )
        reflection.enable_server_reflection(
            (
                *definition.grpc_services,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                readiness_pb2.DESCRIPTOR.services_by_name["ReadinessService"].full_name,
                reflection.SERVICE_NAME,
            ),
            self.server,
        )
        self.port = self.server.add_insecure_port(f"{self._host}:{self._requested_port}")
        if self.port == 0:
            raise RuntimeError(f"could not bind {self._host}:{self._requested_port}")
        self._error_tracking = start_error_tracking(self.runtime.settings, service=definition.name)
        await self.server.start()
        await self.monitor.start()
        if self._metrics_port:
            self._metrics = start_metrics_endpoint(self._host, self._metrics_port)
        if definition.background is not None:
            self._background = [
                asyncio.create_task(loop) for loop in definition.background(self.runtime)
            ]
        log.info("service_started", service=definition.name, port=self.port)
        return self.port

    async def stop(self, grace_seconds: float) -> None:
        """NOT_SERVING, then let in-flight RPCs finish for up to the grace, then close."""
        await self.monitor.enter_shutdown()
        self.runtime.stopping.set()
        await self.server.stop(grace_seconds)
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if self._metrics is not None:
            self._metrics.close()
        if self._error_tracking:
            self._error_tracking = False
            await stop_error_tracking()
        log.info("service_stopped", service=self.definition.name)


async def run_until_signalled(server: ServiceServer) -> None:
    """Serves until SIGTERM or SIGINT, then drains and closes the runtime's clients."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    freeze_startup_objects()
    await stop.wait()
    grace = server.runtime.settings.grace_seconds
    log.info("shutdown_requested", grace_seconds=grace)
    try:
        # server.stop cancels whatever is still running when the grace ends; the outer timeout
        # guards against a handler that ignores cancellation.
        await asyncio.wait_for(server.stop(grace), grace + 5)
    except TimeoutError:
        log.error("forced_exit_after_grace")
    await server.runtime.close()
