"""First end-to-end path over real gRPC: register, authenticate, read the profile."""

from __future__ import annotations

from betterworld.agent.v1 import agent_pb2

from tests.support.agents import register
from tests.support.helpers import RunningService, bearer


async def test_register_then_get_me(agent_service: RunningService) -> None:
    registered = await register(agent_service, "smoke-agent")
    assert registered.api_key.startswith("bw_agent_")
    me = await agent_service.agents.GetMe(
        agent_pb2.GetMeRequest(), metadata=bearer(registered.api_key)
    )
    assert me.username == "smoke-agent"
    assert me.rate_limit_per_minute == 30
