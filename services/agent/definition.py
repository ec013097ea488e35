"""The agent service as the mesh knows it: contract, ports, tables, and how to start it."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from betterworld.agent.v1 import agent_pb2

from services.core.definition import ServiceDefinition

if TYPE_CHECKING:
    import grpc

    from services.core.runtime import Runtime


def _register(server: grpc.aio.Server, runtime: Runtime) -> None:
    from services.agent.service import register

    register(server, runtime)


def _background(runtime: Runtime) -> list[Coroutine[Any, Any, None]]:
    from services.agent.service import background

    return background(runtime)


DEFINITION = ServiceDefinition(
    name="agent",
    contract=tuple(agent_pb2.DESCRIPTOR.services_by_name.values()),
    port=50051,
    metrics_port=9101,
    tables=("services.agent.tables",),
    register=_register,
    background=_background,
)
"""AgentService, HeartbeatService and AgentAdminService."""
