"""Missions over real gRPC, with the real content service behind them: creation from an
approved solution, moderation, visibility and location privacy, edits, archive, geo search."""

from __future__ import annotations

import grpc
import pytest
from betterworld.common.v1 import common_pb2
from betterworld.mission.v1 import missions_pb2 as pb

from tests.support.helpers import unpack
from tests.support.missions import MissionWorld

SAN_FRANCISCO = (37.7749, -122.4194)
NEW_YORK = (40.7128, -74.0060)


async def _error(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call  # type: ignore[misc]
    return info.value


async def test_a_mission_is_moderated_before_anyone_sees_it(mission_world: MissionWorld) -> None:
    agent, solution_id = await mission_world.agent_with_solution()
    mission = await mission_world.create(agent, solution_id, max_claims=2)
    assert mission.guardrail_status == common_pb2.PENDING
    assert mission.domain == common_pb2.CLEAN_WATER_SANITATION
    assert mission.status == pb.Mission.OPEN and mission.version == 1
    assert (mission.latitude, mission.longitude) == (37.8024, -122.2570)

    get = pb.GetMissionRequest(mission_id=mission.mission_id)
    hidden = unpack(await _error(mission_world.missions.GetMission(get)))
    assert (hidden.code, hidden.reason) == (grpc.StatusCode.NOT_FOUND, "MISSION_NOT_FOUND")
    own = await mission_world.missions.GetMission(get, metadata=agent.auth)
    assert own.guardrail_status == common_pb2.PENDING

    assert not await mission_world.decide(mission)
    public = await mission_world.missions.GetMission(get)
    assert public.guardrail_status == common_pb2.APPROVED
    # Everyone but the author and a claimer sees the place to about a kilometre.
    assert (public.latitude, public.longitude) == (37.80, -122.26)
    assert public.location_approximate and public.guardrail_explanation == ""
    author_view = await mission_world.missions.GetMission(get, metadata=agent.auth)
    assert author_view.latitude == 37.8024 and not author_view.location_approximate
    assert author_view.guardrail_explanation == "Decided by the test."

    human = await mission_world.human()
    claimer_before = await mission_world.missions.GetMission(get, metadata=human)
    assert claimer_before.location_approximate
    await mission_world.missions.ClaimMission(
        pb.ClaimMissionRequest(mission_id=mission.mission_id), metadata=human
    )
    claimer = await mission_world.missions.GetMission(get, metadata=human)
    assert claimer.latitude == 37.8024 and not claimer.location_approximate

    # A decision on an evaluation that is no longer current changes nothing.
    stale = await mission_world.internal.ApplyMissionDecision(
        pb.ApplyMissionDecisionRequest(
            mission_id=mission.mission_id,
            evaluation_id="00000000-0000-4000-8000-000000000000",
            status=common_pb2.REJECTED,
        ),
        metadata=mission_world.content.internal_auth,
    )
    assert stale.stale


async def test_missions_come_only_from_the_authors_approved_solutions(
    mission_world: MissionWorld,
) -> None:
    agent, solution_id = await mission_world.agent_with_solution()
    other, _ = await mission_world.agent_with_solution()
    stolen = unpack(await _error(mission_world.create(other, solution_id)))
    assert (stolen.code, stolen.reason) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "NOT_SOLUTION_AUTHOR",
    )

    problem = await mission_world.content.approved_problem(agent)
    pending = await mission_world.content.solution(agent, problem.problem_id)
    early = unpack(await _error(mission_world.create(agent, pending.solution_id)))
    assert (early.code, early.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "SOLUTION_NOT_APPROVED",
    )
    unknown = unpack(
        await _error(mission_world.create(agent, "5b0c4c34-8f66-4a4f-9a55-0b1b0c0c0c0c"))
    )
    assert unknown.reason == "SOLUTION_NOT_APPROVED"

    human = await mission_world.human()
    as_human = unpack(
        await _error(
            mission_world.missions.CreateMission(
                pb.CreateMissionRequest(solution_id=solution_id), metadata=human
            )
        )
    )
    assert as_human.code == grpc.StatusCode.PERMISSION_DENIED


async def test_every_bad_field_is_named(mission_world: MissionWorld) -> None:
    agent, solution_id = await mission_world.agent_with_solution()
    error = unpack(
        await _error(
            mission_world.create(
                agent,
                solution_id,
                title="",
                description="short",
                instructions=[],
                evidence_required=[pb.EvidenceRequirement(description="x")],
                latitude=91.0,
                longitude=0.0,
                estimated_duration_minutes=10,
                difficulty=pb.DIFFICULTY_UNSPECIFIED,
                token_reward=0,
                max_claims=101,
                location_radius_km=201,
            )
        )
    )
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(error.field_violations) == {
        "title",
        "description",
        "instructions",
        "evidence_required[0].type",
        "latitude",
        "estimated_duration_minutes",
        "difficulty",
        "token_reward",
        "max_claims",
        "location_radius_km",
    }
    lonely = unpack(await _error(mission_world.create(agent, solution_id, longitude=None)))
    assert set(lonely.field_violations) == {"longitude"}


async def test_edits_need_the_version_read_and_no_active_claims(
    mission_world: MissionWorld,
) -> None:
    agent, solution_id = await mission_world.agent_with_solution()
    mission = await mission_world.approved(agent, solution_id, max_claims=2)
    edited = await mission_world.missions.UpdateMission(
        pb.UpdateMissionRequest(mission_id=mission.mission_id, version=1, token_reward=40),
        metadata=agent.auth,
    )
    assert (edited.version, edited.token_reward) == (2, 40)
    assert edited.guardrail_status == common_pb2.PENDING  # moderated again
    stale = unpack(
        await _error(
            mission_world.missions.UpdateMission(
                pb.UpdateMissionRequest(mission_id=mission.mission_id, version=1, title="Again"),
                metadata=agent.auth,
            )
        )
    )
    assert (stale.code, stale.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "VERSION_MISMATCH")

    await mission_world.decide(edited)
    human = await mission_world.human()
    await mission_world.missions.ClaimMission(
        pb.ClaimMissionRequest(mission_id=mission.mission_id), metadata=human
    )
    for call in (
        mission_world.missions.UpdateMission(
            pb.UpdateMissionRequest(mission_id=mission.mission_id, version=2, title="New"),
            metadata=agent.auth,
        ),
        mission_world.missions.ArchiveMission(
            pb.ArchiveMissionRequest(mission_id=mission.mission_id), metadata=agent.auth
        ),
    ):
        refused = unpack(await _error(call))
        assert refused.reason == "MISSION_HAS_ACTIVE_CLAIMS"
    other, _ = await mission_world.agent_with_solution()
    not_theirs = unpack(
        await _error(
            mission_world.missions.ArchiveMission(
                pb.ArchiveMissionRequest(mission_id=mission.mission_id), metadata=other.auth
            )
        )
    )
    assert not_theirs.reason == "NOT_MISSION_AUTHOR"


async def test_nearby_finds_open_approved_missions_nearest_first(
    mission_world: MissionWorld,
) -> None:
    agent, solution_id = await mission_world.agent_with_solution()
    oakland = await mission_world.approved(agent, solution_id)  # ~16 km from San Francisco
    near = await mission_world.approved(agent, solution_id, latitude=37.78, longitude=-122.41)
    await mission_world.create(agent, solution_id, latitude=37.775, longitude=-122.419)  # pending
    far = await mission_world.approved(agent, solution_id, latitude=34.05, longitude=-118.24)
    request = pb.ListNearbyMissionsRequest(lat=SAN_FRANCISCO[0], lng=SAN_FRANCISCO[1], radius=50)
    found = await mission_world.missions.ListNearbyMissions(request)
    assert [m.mission_id for m in found.data] == [near.mission_id, oakland.mission_id]
    assert 10 < found.data[1].distance_km < 25 and found.data[0].distance_km < 2
    assert far.mission_id not in {m.mission_id for m in found.data}

    # Keyset pages of one: the same order, nothing twice.
    first = await mission_world.missions.ListNearbyMissions(
        pb.ListNearbyMissionsRequest(lat=SAN_FRANCISCO[0], lng=SAN_FRANCISCO[1], radius=50, limit=1)
    )
    second = await mission_world.missions.ListNearbyMissions(
        pb.ListNearbyMissionsRequest(
            lat=SAN_FRANCISCO[0],
            lng=SAN_FRANCISCO[1],
            radius=50,
            limit=1,
            cursor=first.meta.next_cursor,
        )
    )
    assert [first.data[0].mission_id, second.data[0].mission_id] == [
        near.mission_id,
        oakland.mission_id,
    ]
    assert not second.meta.has_more
    # A cursor of another query is refused.
    other_query = unpack(
        await _error(
            mission_world.missions.ListNearbyMissions(
                pb.ListNearbyMissionsRequest(
                    lat=NEW_YORK[0], lng=NEW_YORK[1], cursor=first.meta.next_cursor
                )
            )
        )
    )
    assert other_query.reason == "CURSOR_INVALID"
    in_new_york = await mission_world.missions.ListNearbyMissions(
        pb.ListNearbyMissionsRequest(lat=NEW_YORK[0], lng=NEW_YORK[1], radius=200)
    )
    assert not in_new_york.data
    missing = unpack(
        await _error(
            mission_world.missions.ListNearbyMissions(pb.ListNearbyMissionsRequest(radius=500))
        )
    )
    assert set(missing.field_violations) == {"lat", "lng", "radius"}


async def test_lists_filter_and_sort(mission_world: MissionWorld) -> None:
    agent, solution_id = await mission_world.agent_with_solution()
    cheap = await mission_world.approved(agent, solution_id, token_reward=5, difficulty=pb.EXPERT)
    rich = await mission_world.approved(
        agent, solution_id, token_reward=500, required_skills=["photography"]
    )
    pending = await mission_world.create(agent, solution_id)
    newest = await mission_world.missions.ListMissions(pb.ListMissionsRequest())
    assert [m.mission_id for m in newest.data] == [rich.mission_id, cheap.mission_id]
    by_reward = await mission_world.missions.ListMissions(
        pb.ListMissionsRequest(sort=pb.REWARD, min_reward=1)
    )
    assert [m.mission_id for m in by_reward.data] == [rich.mission_id, cheap.mission_id]
    skilled = await mission_world.missions.ListMissions(
        pb.ListMissionsRequest(skills=["Photography"])
    )
    assert [m.mission_id for m in skilled.data] == [rich.mission_id]
    expert = await mission_world.missions.ListMissions(pb.ListMissionsRequest(difficulty=pb.EXPERT))
    assert [m.mission_id for m in expert.data] == [cheap.mission_id]
    by_distance = await mission_world.missions.ListMissions(
        pb.ListMissionsRequest(
            lat=SAN_FRANCISCO[0], lng=SAN_FRANCISCO[1], radius_km=50, sort=pb.DISTANCE
        )
    )
    assert len(by_distance.data) == 2 and all(m.HasField("distance_km") for m in by_distance.data)
    mine = await mission_world.missions.ListAgentMissions(
        pb.ListAgentMissionsRequest(), metadata=agent.auth
    )
    assert [m.mission_id for m in mine.data] == [
        pending.mission_id,
        rich.mission_id,
        cheap.mission_id,
    ]
    needs_point = unpack(
        await _error(mission_world.missions.ListMissions(pb.ListMissionsRequest(sort=pb.DISTANCE)))
    )
    assert set(needs_point.field_violations) == {"sort"}
