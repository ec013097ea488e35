"""The guardrail service as the mesh knows it: contract, ports, tables, and how to start it."""

from __future__ import annotations

from betterworld.guardrail.v1 import guardrail_pb2

from services.core.business_gauges import BusinessGauge, BusinessGauges
from services.core.definition import ServiceDefinition, lazy

APPROVAL_RATE = BusinessGauge(
    "betterworld_approval_rate_24h",
    "Share (0-1) of the guardrail's evaluations of the last 24 hours that approved the content "
    "(as GetGuardrailStats counts it); NaN when there was none",
)

DEFINITION = ServiceDefinition(
    name="guardrail",
    contract=tuple(guardrail_pb2.DESCRIPTOR.services_by_name.values()),
    port=50053,
    metrics_port=9103,
    tables=("services.guardrail.tables",),
    register=lazy("services.guardrail.service:register"),
    jobs=lazy("services.guardrail.jobs:consumers"),
    business_gauges=BusinessGauges(
        gauges=(APPROVAL_RATE,),
        compute=lazy("services.guardrail.figures:compute"),
    ),
)
"""GuardrailService."""
