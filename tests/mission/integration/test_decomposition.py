"""DecomposeSolution over real gRPC: offline, and with Claude through the real `anthropic`
client against the local fake Messages API (its answers scripted, including failures)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from betterworld.mission.v1 import missions_pb2 as pb
from betterworld.mission.v1 import missions_pb2_grpc
from pydantic import SecretStr

from services.core.settings import Settings
from services.mission.claude_planner import TOOL_NAME
from services.mission.definition import DEFINITION as MISSION
from tests.fakes.anthropic_api import FakeAnthropicAPI, server_error, tool_use
from tests.support.content import ContentClient
from tests.support.helpers import RunningService, start_service, unpack
from tests.support.humans import Humans
from tests.support.missions import MissionWorld

API_KEY = "sk-ant-test-key"


def _mission(n: int) -> dict[str, Any]:
    return {
        "title": f"Sample point {n} of the lake",
        "description": "Measure dissolved oxygen at the marked point and log the reading.",
        "instructions": ["Collect the meter at the boathouse.", "Take three readings."],
        "evidence_required": [{"type": "PHOTO", "description": "The meter's display at the point"}],
        "required_skills": ["data_collection"],
        "estimated_duration_minutes": 60,
        "difficulty": "BEGINNER",
        "token_reward": 20,
    }


async def _error(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call  # type: ignore[misc]
    return info.value


async def test_offline_suggestions_for_the_authors_approved_solution_ten_a_day(
    mission_world: MissionWorld,
) -> None:
    agent, solution_id = await mission_world.agent_with_solution()
    request = pb.DecomposeSolutionRequest(solution_id=solution_id)
    answer = await mission_world.missions.DecomposeSolution(request, metadata=agent.auth)
    assert answer.planner == "offline" and 3 <= len(answer.suggestions) <= 8
    first = answer.suggestions[0]
    assert first.instructions and first.evidence_required and first.token_reward >= 1
    # A suggestion is a valid CreateMission as it stands.
    created = await mission_world.create(
        agent,
        solution_id,
        title=first.title,
        description=first.description,
        instructions=list(first.instructions),
        evidence_required=list(first.evidence_required),
        required_skills=list(first.required_skills),
        estimated_duration_minutes=first.estimated_duration_minutes,
        difficulty=first.difficulty,
        token_reward=first.token_reward,
    )
    assert created.title == first.title

    other, _ = await mission_world.agent_with_solution()
    not_theirs = unpack(
        await _error(mission_world.missions.DecomposeSolution(request, metadata=other.auth))
    )
    assert not_theirs.reason == "NOT_SOLUTION_AUTHOR"  # and it did not count against the limit
    for _ in range(9):
        await mission_world.missions.DecomposeSolution(request, metadata=agent.auth)
    limited = unpack(
        await _error(mission_world.missions.DecomposeSolution(request, metadata=agent.auth))
    )
    assert (limited.code, limited.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "DECOMPOSE_LIMIT")
    assert limited.retry_delay_seconds and limited.retry_delay_seconds <= 24 * 3600


@pytest.fixture
async def claude_world(
    content: ContentClient, mission_settings: Settings
) -> AsyncIterator[tuple[MissionWorld, FakeAnthropicAPI]]:
    async with FakeAnthropicAPI(api_key=API_KEY) as fake:
        settings = mission_settings.model_copy(
            update={
                "content_internal_target": content.service.address,
                "anthropic_api_key": SecretStr(API_KEY),
                "anthropic_base_url": fake.base_url,
            }
        )
        service: RunningService = await start_service(
            dataclasses.replace(MISSION, background=None), settings
        )
        try:
            yield MissionWorld(content, service, Humans(service)), fake
        finally:
            await service.stop()


async def test_claude_suggestions_are_validated_and_failures_are_unavailable(
    claude_world: tuple[MissionWorld, FakeAnthropicAPI],
) -> None:
    world, fake = claude_world
    stub = missions_pb2_grpc.MissionServiceStub(world.service.channel)
    agent, solution_id = await world.agent_with_solution()
    request = pb.DecomposeSolutionRequest(solution_id=solution_id)

    fake.script(tool_use({"missions": [_mission(n) for n in range(4)]}, name=TOOL_NAME))
    answer = await stub.DecomposeSolution(request, metadata=agent.auth)
    assert answer.planner == "claude-haiku-5-5"
    assert [s.title for s in answer.suggestions] == [
        f"Sample point {n} of the lake" for n in range(4)
    ]
    sent = fake.requests[-1]
    assert sent.tool_choice == {
        "type": "tool",
        "name": TOOL_NAME,
        "disable_parallel_tool_use": True,
    }
    assert "Community" not in sent.system and "<untrusted_content>" in sent.user_text

    for behaviour in (
        tool_use({"missions": [_mission(1), _mission(2)]}, name=TOOL_NAME),  # too few
        tool_use(
            {"missions": [{**_mission(n), "token_reward": "lots"} for n in range(3)]},
            name=TOOL_NAME,
        ),
        tool_use({"missions": [_mission(n) for n in range(3)]}, name="record_evaluation"),
    ):
        fake.script(behaviour)
        failed = unpack(await _error(stub.DecomposeSolution(request, metadata=agent.auth)))
        assert (failed.code, failed.reason) == (
            grpc.StatusCode.UNAVAILABLE,
            "DECOMPOSITION_UNAVAILABLE",
        )
        assert failed.retry_delay_seconds is not None
    # The SDK retries a 500 twice, then the caller is told to come back.
    fake.script(server_error(), server_error(), server_error())
    down = unpack(await _error(stub.DecomposeSolution(request, metadata=agent.auth)))
    assert down.code == grpc.StatusCode.UNAVAILABLE
    # Failed plans did not use up the day's ten.
    for _ in range(9):
        fake.script(tool_use({"missions": [_mission(n) for n in range(3)]}, name=TOOL_NAME))
        await stub.DecomposeSolution(request, metadata=agent.auth)
