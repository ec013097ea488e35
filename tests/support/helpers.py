"""Test helpers: an in-process service on port 0 with stubs, and rich-status unpacking."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from betterworld.agent.v1 import agent_pb2_grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from services.core.definition import ServiceDefinition
from services.core.runtime import Runtime, build_runtime
from services.core.server import ServiceServer
from services.core.settings import Settings


@dataclass
class RunningService:
    """A started service with a channel to it."""

    server: ServiceServer
    runtime: Runtime
    channel: grpc.aio.Channel

    @property
    def address(self) -> str:
        """host:port of the gRPC server."""
        return f"127.0.0.1:{self.server.port}"

    @property
    def agents(self) -> agent_pb2_grpc.AgentServiceStub:
        """AgentService stub."""
        return agent_pb2_grpc.AgentServiceStub(self.channel)

    @property
    def heartbeat(self) -> agent_pb2_grpc.HeartbeatServiceStub:
        """HeartbeatService stub."""
        return agent_pb2_grpc.HeartbeatServiceStub(self.channel)

    @property
    def admin(self) -> agent_pb2_grpc.AgentAdminServiceStub:
        """AgentAdminService stub."""
        return agent_pb2_grpc.AgentAdminServiceStub(self.channel)

    async def stop(self) -> None:
        """Closes the channel, drains the server, closes clients."""
        await self.channel.close()
        await self.server.stop(1)
        await self.runtime.close()


async def start_service(
    definition: ServiceDefinition, settings: Settings, *, metrics_port: int = 0
) -> RunningService:
    """Starts a service in-process on a free port."""
    runtime = build_runtime(settings)
    server = ServiceServer(definition, runtime, host="127.0.0.1", port=0, metrics_port=metrics_port)
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    return RunningService(server=server, runtime=runtime, channel=channel)


@contextlib.asynccontextmanager
async def running_service(
    definition: ServiceDefinition, settings: Settings
) -> AsyncIterator[RunningService]:
    """`start_service`, stopped on leaving the block whatever happened in it."""
    service = await start_service(definition, settings)
    try:
        yield service
    finally:
        await service.stop()


def bearer(key: str) -> Sequence[tuple[str, str]]:
    """Call metadata carrying an API key."""
    return (("authorization", f"Bearer {key}"),)


@dataclass
class RichError:
    """The parts of a rich gRPC error a client looks at."""

    code: grpc.StatusCode
    message: str
    reason: str
    domain: str
    field_violations: dict[str, str]
    retry_delay_seconds: float | None
    resource: tuple[str, str] | None
    trailing: dict[str, str]


async def refused(call: Awaitable[object]) -> RichError:
    """The rich error of a call that must fail (the test fails if it succeeds)."""
    try:
        answer = await call
    except grpc.aio.AioRpcError as error:
        return unpack(error)
    raise AssertionError(f"the call succeeded: {str(answer)[:300]}")


def unpack(error: grpc.aio.AioRpcError) -> RichError:
    """Decodes google.rpc.Status details from an RPC error."""
    status: status_pb2.Status | None = rpc_status.from_call(error)  # type: ignore[arg-type]
    reason = domain = ""
    violations: dict[str, str] = {}
    retry: float | None = None
    resource: tuple[str, str] | None = None
    for detail in status.details if status else []:
        for cls in (
            error_details_pb2.ErrorInfo,
            error_details_pb2.BadRequest,
            error_details_pb2.RetryInfo,
            error_details_pb2.ResourceInfo,
        ):
            if detail.Is(cls.DESCRIPTOR):
                msg: Any = cls()
                detail.Unpack(msg)
                if isinstance(msg, error_details_pb2.ErrorInfo):
                    reason, domain = msg.reason, msg.domain
                elif isinstance(msg, error_details_pb2.BadRequest):
                    violations = {v.field: v.description for v in msg.field_violations}
                elif isinstance(msg, error_details_pb2.RetryInfo):
                    retry = msg.retry_delay.seconds + msg.retry_delay.nanos / 1e9
                else:
                    resource = (msg.resource_type, msg.resource_name)
    trailing = {k: v for k, v in (error.trailing_metadata() or ()) if isinstance(v, str)}
    return RichError(
        code=error.code(),
        message=error.details() or "",
        reason=reason,
        domain=domain,
        field_violations=violations,
        retry_delay_seconds=retry,
        resource=resource,
        trailing=trailing,
    )
