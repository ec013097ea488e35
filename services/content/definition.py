"""The content service as the mesh knows it: contract, ports, tables, and how to start it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from betterworld.content.v1 import content_pb2

from services.core.definition import ServiceDefinition

if TYPE_CHECKING:
    import grpc

    from services.core.jobs import JobConsumer, WorkerResources
    from services.core.runtime import Runtime


def _register(server: grpc.aio.Server, runtime: Runtime) -> None:
    from services.content.service import register

    register(server, runtime)


async def _jobs(resources: WorkerResources) -> list[JobConsumer]:
    from services.content.jobs import consumers

    return await consumers(resources)


DEFINITION = ServiceDefinition(
    name="content",
    contract=tuple(content_pb2.DESCRIPTOR.services_by_name.values()),
    port=50052,
    metrics_port=9102,
    tables=("services.content.tables",),
    register=_register,
    jobs=_jobs,
)
"""ContentService and the internal ContentInternalService."""
