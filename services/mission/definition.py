"""The mission service as the mesh knows it: contract, ports, tables, and how to start it."""

from __future__ import annotations

from betterworld.mission.v1 import (
    dashboard_pb2,
    mission_pb2,
    missions_pb2,
    profile_pb2,
    tokens_pb2,
)

from services.core.definition import ServiceDefinition, lazy

DEFINITION = ServiceDefinition(
    name="mission",
    contract=(
        *mission_pb2.DESCRIPTOR.services_by_name.values(),
        *profile_pb2.DESCRIPTOR.services_by_name.values(),
        *missions_pb2.DESCRIPTOR.services_by_name.values(),
        *dashboard_pb2.DESCRIPTOR.services_by_name.values(),
        *tokens_pb2.DESCRIPTOR.services_by_name.values(),
    ),
    port=50054,
    metrics_port=9104,
    tables=("services.mission.tables",),
    register=lazy("services.mission.service:register"),
    background=lazy("services.mission.service:background"),
    jobs=lazy("services.mission.jobs:consumers"),
)
"""HumanAuthService, HumanAdminService, ProfileService, MissionService, DashboardService,
TokenService, TokenAdminService and the internal MissionInternalService."""
