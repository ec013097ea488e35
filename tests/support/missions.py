"""Missions for tests: the content and mission services in-process, an agent with an approved
solution, missions approved through the internal RPC as the guardrail would, and humans."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from betterworld.common.v1 import common_pb2
from betterworld.content.v1 import content_pb2
from betterworld.mission.v1 import missions_pb2 as pb
from betterworld.mission.v1 import missions_pb2_grpc as pb_grpc

from tests.support.content import Agent, ContentClient
from tests.support.helpers import RunningService, bearer
from tests.support.humans import Humans

_emails = itertools.count()

LAKE_MISSION: dict[str, Any] = {
    "title": "Sample the lake at the north shore",
    "description": "Take two water samples at the north shore point and photograph the site.",
    "instructions": [
        pb.Instruction(step=1, text="Collect the kit from the boathouse."),
        pb.Instruction(step=2, text="Fill both bottles at the marked point and label them."),
    ],
    "evidence_required": [
        pb.EvidenceRequirement(type=pb.PHOTO, description="The labelled bottles at the site")
    ],
    "required_skills": ["data_collection"],
    "latitude": 37.8024,
    "longitude": -122.2570,
    "location_name": "Lake Merritt north shore",
    "location_radius_km": 2,
    "estimated_duration_minutes": 60,
    "difficulty": pb.BEGINNER,
    "token_reward": 25,
}


@dataclass
class MissionWorld:
    """A content service, a mission service that asks it for solutions, and helpers."""

    content: ContentClient
    service: RunningService
    humans: Humans
    solutions: dict[str, str] = field(default_factory=dict)
    """Approved solution id per agent id."""

    @property
    def missions(self) -> pb_grpc.MissionServiceStub:
        """MissionService stub."""
        return pb_grpc.MissionServiceStub(self.service.channel)

    @property
    def internal(self) -> pb_grpc.MissionInternalServiceStub:
        """MissionInternalService stub."""
        return pb_grpc.MissionInternalServiceStub(self.service.channel)

    async def agent_with_solution(self) -> tuple[Agent, str]:
        """A verified agent and one of its solutions, approved."""
        agent = await self.content.agent()
        problem = await self.content.approved_problem(agent)
        solution = await self.content.solution(agent, problem.problem_id)
        await self.content.decide(
            content_pb2.SOLUTION,
            solution.solution_id,
            solution.guardrail_evaluation_id,
            common_pb2.APPROVED,
        )
        self.solutions[agent.agent_id] = solution.solution_id
        return agent, solution.solution_id

    async def create(self, agent: Agent, solution_id: str, **fields: Any) -> pb.Mission:
        """A mission (PENDING) with the lake mission's fields, overridden by `fields`."""
        values = {**LAKE_MISSION, **fields}
        return await self.missions.CreateMission(
            pb.CreateMissionRequest(solution_id=solution_id, **values), metadata=agent.auth
        )

    async def decide(self, mission: pb.Mission, status: int = common_pb2.APPROVED) -> bool:
        """Records a guardrail decision on the mission's current evaluation; True if stale."""
        current = await self.service_get(mission.mission_id)
        response = await self.internal.ApplyMissionDecision(
            pb.ApplyMissionDecisionRequest(
                mission_id=mission.mission_id,
                evaluation_id=current,
                status=status,  # type: ignore[arg-type]
                explanation="Decided by the test.",
            ),
            metadata=self.content.internal_auth,
        )
        return response.stale

    async def service_get(self, mission_id: str) -> str:
        """The mission's current evaluation id (as the guardrail's job carries it)."""
        from services.mission.mission_store import MissionStore

        record = await MissionStore(self.service.runtime.engine).get(mission_id)
        assert record is not None
        return record.guardrail_evaluation_id

    async def approved(self, agent: Agent, solution_id: str, **fields: Any) -> pb.Mission:
        """A mission, approved."""
        mission = await self.create(agent, solution_id, **fields)
        await self.decide(mission)
        return mission

    async def human(self) -> tuple[tuple[str, str], ...]:
        """A new verified human's call metadata (access token)."""
        tokens = await self.humans.verified(f"human{next(_emails)}@example.org")
        return tuple(bearer(tokens.access_token))
