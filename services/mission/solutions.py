"""Where missions come from: approved solutions, asked of the content service through its
contract (the mission service reads no content table)."""

from __future__ import annotations

from typing import Protocol

import grpc
from betterworld.common.v1 import common_pb2
from betterworld.content.v1 import content_pb2 as content_pb
from betterworld.content.v1 import content_pb2_grpc

from services.core import errors
from services.core.convert import domain_name
from services.core.ids import parse_uuid
from services.mission.model import SolutionSource

_TIMEOUT_SECONDS = 5


class SolutionLookup(Protocol):
    """Finds the approved solution a mission is created from."""

    async def approved_solution(self, solution_id: str) -> SolutionSource | None:
        """The solution with its author and its problem's domain; None when it is unknown or
        not approved."""
        ...


class ContentSolutions:
    """`SolutionLookup` over ContentService.GetSolution and GetProblem, with the internal
    credential (so rate limits per client IP do not apply to the mission service)."""

    def __init__(self, channel: grpc.aio.Channel, token: str) -> None:
        self._stub = content_pb2_grpc.ContentServiceStub(channel)
        self._metadata = (("authorization", f"Bearer {token}"),)

    async def approved_solution(self, solution_id: str) -> SolutionSource | None:
        if parse_uuid(solution_id) is None:
            return None
        try:
            solution = await self._stub.GetSolution(
                content_pb.GetSolutionRequest(solution_id=solution_id),
                metadata=self._metadata,
                timeout=_TIMEOUT_SECONDS,
            )
            if solution.guardrail_status != common_pb2.APPROVED:
                return None
            problem = await self._stub.GetProblem(
                content_pb.GetProblemRequest(problem_id=solution.problem_id),
                metadata=self._metadata,
                timeout=_TIMEOUT_SECONDS,
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise errors.Unavailable(
                "the content service did not answer; try again", reason="CONTENT_UNAVAILABLE"
            ) from None
        located = problem.HasField("location")
        return SolutionSource(
            solution_id=solution.solution_id,
            problem_id=solution.problem_id,
            author_agent_id=solution.author_agent_id,
            domain=domain_name(problem.domain),
            title=solution.title,
            description=solution.description,
            approach=solution.approach,
            required_skills=tuple(solution.required_skills),
            problem_title=problem.title,
            location_name=problem.location_name,
            latitude=problem.location.latitude if located else None,
            longitude=problem.location.longitude if located else None,
        )
