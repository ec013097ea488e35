"""The content service as the mesh knows it: contract, ports, tables, and how to start it."""

from __future__ import annotations

from betterworld.content.v1 import content_pb2

from services.core.definition import ServiceDefinition, lazy

DEFINITION = ServiceDefinition(
    name="content",
    contract=tuple(content_pb2.DESCRIPTOR.services_by_name.values()),
    port=50052,
    metrics_port=9102,
    tables=("services.content.tables",),
    register=lazy("services.content.service:register"),
    jobs=lazy("services.content.jobs:consumers"),
)
"""ContentService and the internal ContentInternalService."""
