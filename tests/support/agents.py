"""Agents for tests: registered over gRPC with valid defaults."""

from __future__ import annotations

from betterworld.agent.v1 import agent_pb2
from betterworld.common.v1 import common_pb2

from tests.support.helpers import RunningService


async def register(
    service: RunningService, username: str = "test-agent", **fields: object
) -> agent_pb2.RegisterAgentResponse:
    """Registers an agent with valid defaults."""
    request = agent_pb2.RegisterAgentRequest(
        username=username,
        framework=fields.pop("framework", agent_pb2.LANGCHAIN),  # type: ignore[arg-type]
        specializations=fields.pop(  # type: ignore[arg-type]
            "specializations", [common_pb2.FOOD_SECURITY]
        ),
        **fields,  # type: ignore[arg-type]
    )
    return await service.agents.RegisterAgent(request)
