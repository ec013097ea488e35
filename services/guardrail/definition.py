"""The guardrail service as the mesh knows it: contract, ports, tables, and how to start it."""

from __future__ import annotations

from betterworld.guardrail.v1 import guardrail_pb2

from services.core.definition import ServiceDefinition, lazy

DEFINITION = ServiceDefinition(
    name="guardrail",
    contract=tuple(guardrail_pb2.DESCRIPTOR.services_by_name.values()),
    port=50053,
    metrics_port=9103,
    tables=("services.guardrail.tables",),
    register=lazy("services.guardrail.service:register"),
    jobs=lazy("services.guardrail.jobs:consumers"),
)
"""GuardrailService."""
