"""The content service as the mesh knows it: contract, ports, tables, and how to start it."""

from __future__ import annotations

from betterworld.content.v1 import content_pb2

from services.core.business_gauges import BusinessGauge, BusinessGauges
from services.core.definition import ServiceDefinition, lazy

PROBLEMS_TODAY = BusinessGauge(
    "betterworld_problems_today",
    "Problems reported since 00:00 UTC today, whatever their guardrail outcome",
)

DEFINITION = ServiceDefinition(
    name="content",
    contract=tuple(content_pb2.DESCRIPTOR.services_by_name.values()),
    port=50052,
    metrics_port=9102,
    tables=("services.content.tables",),
    register=lazy("services.content.service:register"),
    jobs=lazy("services.content.jobs:consumers"),
    business_gauges=BusinessGauges(
        gauges=(PROBLEMS_TODAY,),
        compute=lazy("services.content.figures:compute"),
    ),
)
"""ContentService and the internal ContentInternalService."""
