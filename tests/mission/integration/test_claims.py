"""Claims under concurrency, over real gRPC on real PostgreSQL: limits that races cannot pass,
slots that free and are reused, expiry."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from betterworld.mission.v1 import missions_pb2 as pb
from sqlalchemy import text

from services.mission.claims import expire_overdue
from services.mission.service import build_deps
from tests.support.helpers import unpack
from tests.support.missions import MissionWorld


async def _error(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call  # type: ignore[misc]
    return info.value


def _claim(world: MissionWorld, mission_id: str, human: tuple[tuple[str, str], ...]) -> object:
    return world.missions.ClaimMission(
        pb.ClaimMissionRequest(mission_id=mission_id), metadata=human
    )


async def _active_claims_in_sql(world: MissionWorld, mission_id: str) -> tuple[int, int, str]:
    async with world.service.runtime.engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT m.active_claims, (SELECT count(*) FROM mission_claims c "
                    "WHERE c.mission_id = m.id AND c.status IN ('active', 'submitted')), m.status "
                    "FROM missions m WHERE m.id = :id"
                ),
                {"id": mission_id},
            )
        ).one()
    return int(row[0]), int(row[1]), str(row[2])


async def test_fifty_humans_racing_for_three_slots(mission_world: MissionWorld) -> None:
    agent, solution_id = await mission_world.agent_with_solution()
    mission = await mission_world.approved(agent, solution_id, max_claims=3)
    humans = [await mission_world.human() for _ in range(50)]
    results = await asyncio.gather(
        *(_claim(mission_world, mission.mission_id, h) for h in humans),  # type: ignore[misc]
        return_exceptions=True,
    )
    won = [r for r in results if isinstance(r, pb.Claim)]
    lost = [unpack(r) for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(won) == 3 and len(lost) == 47
    assert {(e.code, e.reason) for e in lost} == {
        (grpc.StatusCode.FAILED_PRECONDITION, "MISSION_FULL")
    }
    assert await _active_claims_in_sql(mission_world, mission.mission_id) == (3, 3, "full")
    status = await mission_world.missions.GetMission(
        pb.GetMissionRequest(mission_id=mission.mission_id)
    )
    assert status.status == pb.Mission.FULL and status.active_claims == 3


async def test_one_human_racing_for_six_missions_gets_three(mission_world: MissionWorld) -> None:
    agent, solution_id = await mission_world.agent_with_solution()
    missions = [await mission_world.approved(agent, solution_id) for _ in range(6)]
    human = await mission_world.human()
    results = await asyncio.gather(
        *(_claim(mission_world, m.mission_id, human) for m in missions),  # type: ignore[misc]
        return_exceptions=True,
    )
    won = [r for r in results if isinstance(r, pb.Claim)]
    assert len(won) == 3
    assert {unpack(r).reason for r in results if isinstance(r, grpc.aio.AioRpcError)} == {
        "CLAIM_LIMIT"
    }
    again = unpack(await _error(_claim(mission_world, won[0].mission_id, human)))
    assert (again.code, again.reason) == (grpc.StatusCode.ALREADY_EXISTS, "ALREADY_CLAIMED")
    mine = await mission_world.missions.ListMyClaims(pb.ListMyClaimsRequest(), metadata=human)
    assert {c.mission_id for c in mine.data} == {c.mission_id for c in won}
    assert all(c.mission_title for c in mine.data)


async def test_an_abandoned_slot_is_reused_by_another_human(mission_world: MissionWorld) -> None:
    agent, solution_id = await mission_world.agent_with_solution()
    mission = await mission_world.approved(agent, solution_id, max_claims=1)
    first, second = await mission_world.human(), await mission_world.human()
    claim = await _claim(mission_world, mission.mission_id, first)  # type: ignore[misc]
    assert claim.status == pb.Claim.ACTIVE
    assert claim.deadline_at.seconds - claim.claimed_at.seconds == 7 * 24 * 3600
    full = unpack(await _error(_claim(mission_world, mission.mission_id, second)))
    assert full.reason == "MISSION_FULL"

    progressed = await mission_world.missions.UpdateClaim(
        pb.UpdateClaimRequest(
            mission_id=mission.mission_id,
            claim_id=claim.claim_id,
            progress_percent=40,
            notes="Kit collected.",
        ),
        metadata=first,
    )
    assert (progressed.progress_percent, progressed.notes) == (40, "Kit collected.")
    not_yours = unpack(
        await _error(
            mission_world.missions.UpdateClaim(
                pb.UpdateClaimRequest(
                    mission_id=mission.mission_id, claim_id=claim.claim_id, abandon=True
                ),
                metadata=second,
            )
        )
    )
    assert not_yours.code == grpc.StatusCode.NOT_FOUND
    abandoned = await mission_world.missions.UpdateClaim(
        pb.UpdateClaimRequest(mission_id=mission.mission_id, claim_id=claim.claim_id, abandon=True),
        metadata=first,
    )
    assert abandoned.status == pb.Claim.ABANDONED
    assert await _active_claims_in_sql(mission_world, mission.mission_id) == (0, 0, "open")
    taken = await _claim(mission_world, mission.mission_id, second)  # type: ignore[misc]
    assert taken.status == pb.Claim.ACTIVE
    assert await _active_claims_in_sql(mission_world, mission.mission_id) == (1, 1, "full")
    bad = unpack(
        await _error(
            mission_world.missions.UpdateClaim(
                pb.UpdateClaimRequest(
                    mission_id=mission.mission_id, claim_id=taken.claim_id, progress_percent=101
                ),
                metadata=second,
            )
        )
    )
    assert set(bad.field_violations) == {"progress_percent"}


async def test_a_claim_racing_an_archive_one_wins_cleanly(mission_world: MissionWorld) -> None:
    agent, solution_id = await mission_world.agent_with_solution()
    for _ in range(5):
        mission = await mission_world.approved(agent, solution_id)
        human = await mission_world.human()
        claim, archive = await asyncio.gather(
            _claim(mission_world, mission.mission_id, human),  # type: ignore[arg-type]
            mission_world.missions.ArchiveMission(
                pb.ArchiveMissionRequest(mission_id=mission.mission_id), metadata=agent.auth
            ),
            return_exceptions=True,
        )
        active, live, status = await _active_claims_in_sql(mission_world, mission.mission_id)
        if isinstance(claim, pb.Claim):
            assert unpack(archive).reason == "MISSION_HAS_ACTIVE_CLAIMS"  # type: ignore[arg-type]
            assert (active, live, status) == (1, 1, "full")
        else:
            assert isinstance(archive, pb.Mission) and archive.status == pb.Mission.ARCHIVED
            assert unpack(claim).reason == "MISSION_NOT_OPEN"  # type: ignore[arg-type]
            assert (active, live, status) == (0, 0, "archived")


async def test_overdue_claims_and_missions_expire_idempotently(mission_world: MissionWorld) -> None:
    agent, solution_id = await mission_world.agent_with_solution()
    mission = await mission_world.approved(agent, solution_id, max_claims=1)
    human = await mission_world.human()
    await _claim(mission_world, mission.mission_id, human)  # type: ignore[misc]
    deps = build_deps(mission_world.service.runtime)
    assert await expire_overdue(deps) == (0, 0)
    async with mission_world.service.runtime.engine.begin() as conn:
        await conn.execute(text("UPDATE mission_claims SET deadline_at = now() - interval '1 s'"))
    assert await expire_overdue(deps) == (1, 0)
    assert await expire_overdue(deps) == (0, 0)
    assert await _active_claims_in_sql(mission_world, mission.mission_id) == (0, 0, "open")
    mine = await mission_world.missions.ListMyClaims(
        pb.ListMyClaimsRequest(status=pb.Claim.EXPIRED), metadata=human
    )
    assert len(mine.data) == 1

    async with mission_world.service.runtime.engine.begin() as conn:
        await conn.execute(text("UPDATE missions SET expires_at = now() - interval '1 s'"))
    assert await expire_overdue(deps) == (0, 1)
    late = unpack(await _error(_claim(mission_world, mission.mission_id, human)))
    assert late.reason == "MISSION_EXPIRED"
    nearby = await mission_world.missions.ListNearbyMissions(
        pb.ListNearbyMissionsRequest(lat=37.7749, lng=-122.4194, radius=50)
    )
    assert not nearby.data
