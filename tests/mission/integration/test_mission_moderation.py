"""A mission goes through the same guardrail as all agent content: the worker's decision and
an operator's review reach the mission service, not the content service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from betterworld.common.v1 import common_pb2
from betterworld.guardrail.v1 import guardrail_pb2 as gpb
from betterworld.guardrail.v1 import guardrail_pb2_grpc
from betterworld.mission.v1 import missions_pb2 as pb

from services.core.credentials import store as credentials
from services.core.credentials.keys import OPERATOR_KEY_PREFIX, generate_key
from services.guardrail.definition import DEFINITION as GUARDRAIL
from tests.support.content import eventually
from tests.support.helpers import RunningService, bearer, start_service
from tests.support.missions import MissionWorld


@pytest.fixture
async def guardrail(mission_world: MissionWorld) -> AsyncIterator[RunningService]:
    settings = mission_world.content.settings.model_copy(
        update={
            "content_internal_target": mission_world.content.service.address,
            "mission_internal_target": mission_world.service.address,
        }
    )
    service = await start_service(GUARDRAIL, settings)
    try:
        yield service
    finally:
        await service.stop()


async def test_new_authors_missions_are_flagged_and_an_operator_approves_them(
    mission_world: MissionWorld, guardrail: RunningService, run_worker: Any, local_classifier: Any
) -> None:
    agent, solution_id = await mission_world.agent_with_solution()
    mission = await mission_world.create(agent, solution_id)
    await run_worker(local_classifier, mission_internal_target=mission_world.service.address)
    get = pb.GetMissionRequest(mission_id=mission.mission_id)

    async def decided() -> bool:
        seen = await mission_world.missions.GetMission(get, metadata=agent.auth)
        return seen.guardrail_status != common_pb2.PENDING

    await eventually(decided)
    seen = await mission_world.missions.GetMission(get, metadata=agent.auth)
    # A new author's content that passes the rules waits for a person.
    assert seen.guardrail_status == common_pb2.FLAGGED
    assert seen.guardrail_explanation

    key = generate_key(OPERATOR_KEY_PREFIX)
    await credentials.create_operator(
        guardrail.runtime.engine, name="ops", digest=key.digest, display_prefix=key.display_prefix
    )
    operator = tuple(bearer(key.plaintext))
    stub = guardrail_pb2_grpc.GuardrailServiceStub(guardrail.channel)
    queue = await stub.ListFlagged(gpb.ListFlaggedRequest(), metadata=operator)
    [item] = [i for i in queue.data if i.content_id == mission.mission_id]
    assert item.content_type == gpb.MISSION
    await stub.ClaimFlagged(gpb.ClaimFlaggedRequest(flagged_id=item.flagged_id), metadata=operator)
    await stub.ReviewFlagged(
        gpb.ReviewFlaggedRequest(
            flagged_id=item.flagged_id,
            decision=gpb.ReviewFlaggedRequest.APPROVE,
            notes="A clear, safe sampling task with a public location.",
        ),
        metadata=operator,
    )
    public = await mission_world.missions.GetMission(get)
    assert public.guardrail_status == common_pb2.APPROVED
