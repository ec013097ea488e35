"""The mission service as the mesh knows it: contract, ports, tables, and how to start it."""

from __future__ import annotations

from betterworld.mission.v1 import (
    activity_pb2,
    dashboard_pb2,
    evidence_pb2,
    mission_pb2,
    missions_pb2,
    profile_pb2,
    tokens_pb2,
)

from services.core.business_gauges import BusinessGauge, BusinessGauges
from services.core.definition import ServiceDefinition, lazy

MAX_EVIDENCE_MESSAGE_BYTES = 10 * 1024 * 1024 + 64 * 1024
"""A 10 MiB file plus its metadata (evidence_model.MAX_EVIDENCE_BYTES, not imported here:
definitions stay light)."""

MISSIONS_COMPLETED = BusinessGauge(
    "betterworld_missions_completed_week",
    "Missions completed by humans (completed claims) since Monday 00:00 UTC",
)
TOKENS_DISTRIBUTED = BusinessGauge(
    "betterworld_tokens_distributed_week",
    "ImpactTokens paid to humans (every EARN_* ledger movement) since Monday 00:00 UTC",
)

DEFINITION = ServiceDefinition(
    name="mission",
    contract=(
        *mission_pb2.DESCRIPTOR.services_by_name.values(),
        *profile_pb2.DESCRIPTOR.services_by_name.values(),
        *missions_pb2.DESCRIPTOR.services_by_name.values(),
        *dashboard_pb2.DESCRIPTOR.services_by_name.values(),
        *tokens_pb2.DESCRIPTOR.services_by_name.values(),
        *evidence_pb2.DESCRIPTOR.services_by_name.values(),
        *activity_pb2.DESCRIPTOR.services_by_name.values(),
    ),
    port=50054,
    metrics_port=9104,
    tables=("services.mission.tables",),
    register=lazy("services.mission.service:register"),
    background=lazy("services.mission.service:background"),
    jobs=lazy("services.mission.jobs:consumers"),
    business_gauges=BusinessGauges(
        gauges=(MISSIONS_COMPLETED, TOKENS_DISTRIBUTED),
        compute=lazy("services.mission.figures:compute"),
    ),
    # Evidence files (10 MiB) arrive in one SubmitEvidence message through Envoy.
    max_message_bytes=MAX_EVIDENCE_MESSAGE_BYTES,
)
"""HumanAuthService, HumanAdminService, ProfileService, MissionService, DashboardService,
TokenService, TokenAdminService, EvidenceService, PeerReviewService, EvidenceAdminService,
ActivityService and the internal MissionInternalService."""
