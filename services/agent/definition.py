"""The agent service as the mesh knows it: contract, ports, tables, and how to start it."""

from __future__ import annotations

from betterworld.agent.v1 import agent_pb2

from services.core.business_gauges import BusinessGauge, BusinessGauges
from services.core.definition import ServiceDefinition, lazy

ACTIVE_AGENTS = BusinessGauge(
    "betterworld_active_agents_24h",
    "Active (not deactivated) agents that checked in during the last 24 hours",
)

DEFINITION = ServiceDefinition(
    name="agent",
    contract=tuple(agent_pb2.DESCRIPTOR.services_by_name.values()),
    port=50051,
    metrics_port=9101,
    tables=("services.agent.tables",),
    register=lazy("services.agent.service:register"),
    background=lazy("services.agent.service:background"),
    business_gauges=BusinessGauges(
        gauges=(ACTIVE_AGENTS,),
        compute=lazy("services.agent.figures:compute"),
    ),
)
"""AgentService, HeartbeatService and AgentAdminService."""
