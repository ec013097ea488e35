"""The mission service as the mesh knows it: contract, ports, tables, and how to start it."""

from __future__ import annotations

from betterworld.mission.v1 import mission_pb2

from services.core.definition import ServiceDefinition, lazy

DEFINITION = ServiceDefinition(
    name="mission",
    contract=tuple(mission_pb2.DESCRIPTOR.services_by_name.values()),
    port=50054,
    metrics_port=9104,
    tables=("services.mission.tables",),
    register=lazy("services.mission.service:register"),
    background=lazy("services.mission.service:background"),
)
"""HumanAuthService and HumanAdminService (missions and claims follow)."""
