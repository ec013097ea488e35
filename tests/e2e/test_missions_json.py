"""Missions over JSON through real Envoy: literal paths are not taken for mission ids, the
product's paths and status codes, distances in nearby results."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from betterworld.mission.v1 import missions_pb2 as pb

from tests.support.e2e_http import json_error
from tests.support.e2e_stack import envoy_in_front
from tests.support.missions import MissionWorld

pytestmark = pytest.mark.e2e


@pytest.fixture
async def http(mission_world: MissionWorld, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    ports = {"mission": mission_world.service.server.port}
    async with envoy_in_front(ports, tmp_path / "envoy") as client:
        yield client


async def test_missions_and_claims_over_json(
    mission_world: MissionWorld, http: httpx.AsyncClient
) -> None:
    agent, solution_id = await mission_world.agent_with_solution()
    agent_auth = {"authorization": f"Bearer {agent.key}"}
    created = await http.post(
        "/api/v1/missions",
        headers=agent_auth,
        json={
            "solutionId": solution_id,
            "title": "Sample the lake at the north shore",
            "description": "Take two water samples at the north shore point and photograph it.",
            "instructions": [{"step": 1, "text": "Collect the kit from the boathouse."}],
            "evidenceRequired": [
                {"type": "PHOTO", "description": "The labelled bottles", "required": True}
            ],
            "requiredSkills": ["data_collection"],
            "latitude": 37.8024,
            "longitude": -122.2570,
            "locationName": "Lake Merritt north shore",
            "estimatedDurationMinutes": 60,
            "difficulty": "beginner",
            "tokenReward": 25,
            "maxClaims": 2,
        },
    )
    assert created.status_code == 201, created.text
    mission = created.json()
    assert mission["guardrailStatus"] == "PENDING" and mission["locationRadiusKm"] == 5

    # Literal paths are routed to their own RPCs, not read as a mission id.
    stale = await http.patch(
        f"/api/v1/missions/{mission['missionId']}",
        json={"version": 7, "title": "A newer title"},
        headers=agent_auth,
    )
    assert json_error(stale, 409).reason == "VERSION_MISMATCH"  # a conflict, not a bad request
    mine = await http.get("/api/v1/missions/agent", headers=agent_auth)
    assert mine.status_code == 200 and mine.json()["data"][0]["missionId"] == mission["missionId"]
    anonymous_mine = await http.get("/api/v1/missions/mine")
    assert json_error(anonymous_mine, 401).reason == "TOKEN_MISSING"
    empty = await http.get("/api/v1/missions/nearby?lat=37.7749&lng=-122.4194&radius=50")
    assert empty.status_code == 200 and empty.json().get("data", []) == []

    await mission_world.decide(pb.Mission(mission_id=mission["missionId"]))
    near = await http.get("/api/v1/missions/nearby?lat=37.7749&lng=-122.4194&radius=50&limit=10")
    assert near.status_code == 200, near.text
    [found] = near.json()["data"]
    assert found["missionId"] == mission["missionId"] and 10 < found["distanceKm"] < 25
    assert found["locationApproximate"] is True and found["latitude"] == 37.8
    bad = await http.get("/api/v1/missions/nearby?lat=95&lng=0&radius=500")
    assert set(json_error(bad, 400).field_violations) == {"lat", "radius"}
    unknown = await http.get("/api/v1/missions/not-a-mission")
    assert json_error(unknown, 404).reason == "MISSION_NOT_FOUND"

    tokens = await mission_world.humans.verified("json.claimer@example.org")
    human = {"authorization": f"Bearer {tokens.access_token}"}
    claim = await http.post(
        f"/api/v1/missions/{mission['missionId']}/claim", json={}, headers=human
    )
    assert claim.status_code == 201, claim.text
    body = claim.json()
    assert {"claimId", "missionId", "status", "claimedAt", "deadlineAt"} <= set(body)
    again = await http.post(
        f"/api/v1/missions/{mission['missionId']}/claim", json={}, headers=human
    )
    assert json_error(again, 409).reason == "ALREADY_CLAIMED"
    claims = await http.get("/api/v1/missions/mine", headers=human)
    assert [c["missionId"] for c in claims.json()["data"]] == [mission["missionId"]]
    exact = await http.get(f"/api/v1/missions/{mission['missionId']}", headers=human)
    assert exact.json()["latitude"] == 37.8024
    gave_up = await http.patch(
        f"/api/v1/missions/{mission['missionId']}/claims/{body['claimId']}",
        json={"abandon": True},
        headers=human,
    )
    assert gave_up.status_code == 200 and gave_up.json()["status"] == "ABANDONED"
    plan = await http.post(
        f"/api/v1/solutions/{solution_id}:decompose", json={}, headers=agent_auth
    )
    assert plan.status_code == 200, plan.text
    assert plan.json()["planner"] == "offline" and len(plan.json()["suggestions"]) >= 3
    archived = await http.delete(f"/api/v1/missions/{mission['missionId']}", headers=agent_auth)
    assert archived.status_code == 200 and archived.json()["status"] == "ARCHIVED"
