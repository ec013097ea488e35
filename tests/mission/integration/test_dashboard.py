"""A human's dashboard: account, profile completeness and claims, in one call."""

from __future__ import annotations

import grpc
import pytest
from betterworld.mission.v1 import dashboard_pb2, dashboard_pb2_grpc, profile_pb2, profile_pb2_grpc
from betterworld.mission.v1 import missions_pb2 as pb

from tests.support.helpers import unpack
from tests.support.missions import MissionWorld


async def test_the_dashboard_follows_the_profile_and_the_claims(
    mission_world: MissionWorld,
) -> None:
    boards = dashboard_pb2_grpc.DashboardServiceStub(mission_world.service.channel)
    human = await mission_world.human()
    empty = await boards.GetDashboard(dashboard_pb2.GetDashboardRequest(), metadata=human)
    assert not empty.has_profile and empty.profile_completeness == 0
    assert len(empty.profile_suggestions) == 7 and empty.active_claims == 0
    assert empty.user.email_verified

    profiles = profile_pb2_grpc.ProfileServiceStub(mission_world.service.channel)
    await profiles.CreateProfile(
        profile_pb2.CreateProfileRequest(
            skills=["data_collection"], languages=["en"], city="Oakland", country="US"
        ),
        metadata=human,
    )
    agent, solution_id = await mission_world.agent_with_solution()
    first = await mission_world.approved(agent, solution_id)
    second = await mission_world.approved(agent, solution_id)
    for mission in (first, second):
        await mission_world.missions.ClaimMission(
            pb.ClaimMissionRequest(mission_id=mission.mission_id), metadata=human
        )
    board = await boards.GetDashboard(dashboard_pb2.GetDashboardRequest(), metadata=human)
    assert board.has_profile and board.profile_completeness == 50
    assert board.active_claims == 2 and board.completed_claims == 0
    assert [c.mission_id for c in board.current_claims] == [second.mission_id, first.mission_id]

    with pytest.raises(grpc.aio.AioRpcError) as info:
        await boards.GetDashboard(dashboard_pb2.GetDashboardRequest(), metadata=agent.auth)
    assert unpack(info.value).code == grpc.StatusCode.PERMISSION_DENIED
