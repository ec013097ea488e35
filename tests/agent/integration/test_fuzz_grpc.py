"""Property-based junk against every agent RPC over gRPC: never INTERNAL/UNKNOWN, never a leak."""

from __future__ import annotations

import grpc
import pytest
from betterworld.agent.v1 import agent_pb2
from google.protobuf import descriptor

from services.agent.definition import DEFINITION
from services.core.settings import Settings
from tests.support.agents import register
from tests.support.fuzzing import methods_of, send_junk
from tests.support.helpers import RunningService, bearer


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Limits out of the way, so junk reaches validation instead of stopping at a 429."""
    return settings.model_copy(
        update={
            "rate_limit_auth_per_ip": 1_000_000,
            "rate_limit_public_per_ip": 1_000_000,
            "rate_limit_agent_pending": 1_000_000,
        }
    )


@pytest.mark.parametrize(
    ("service_name", "method"),
    methods_of(DEFINITION.contract),
    ids=lambda m: getattr(m, "name", m),
)
async def test_generated_junk_never_causes_internal_errors(
    agent_service: RunningService, service_name: str, method: descriptor.MethodDescriptor
) -> None:
    registered = await register(agent_service, "fuzz-target")
    codes = await send_junk(
        agent_service.channel,
        f"/{service_name}/{method.name}",
        getattr(agent_pb2, method.input_type.name),
        [(), bearer(registered.api_key), bearer("bw_agent_junk-key-000000000000")],
    )
    assert grpc.StatusCode.RESOURCE_EXHAUSTED not in codes
