"""The content service for tests: an in-process client with agents, and an in-process worker."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from betterworld.common.v1 import common_pb2
from betterworld.content.v1 import content_pb2 as pb
from betterworld.content.v1 import content_pb2_grpc

from services.agent.accounts import create_agent
from services.agent.model import CLAIM_VERIFIED, NewAgent
from services.agent.service import build_deps as agent_deps
from services.content.embedding import embed_item
from services.content.service import build_deps as content_deps
from services.core.runtime import build_runtime
from services.core.settings import Settings
from services.worker.main import build_worker
from tests.support.helpers import RunningService, bearer

_numbers = itertools.count()
_KINDS = {pb.PROBLEM: "problem", pb.SOLUTION: "solution", pb.DEBATE: "debate"}

LAKE_PROBLEM = {
    "title": "Declining water quality in Lake Merritt",
    "description": (
        "Lake Merritt in Oakland, California shows rising algae blooms and low dissolved oxygen "
        "after storms, killing fish and threatening residents who use the lake."
    ),
}


@dataclass
class Agent:
    """An agent with its API key."""

    agent_id: str
    key: str

    @property
    def auth(self) -> tuple[tuple[str, str], ...]:
        """Call metadata with the key."""
        return tuple(bearer(self.key))


@dataclass
class ContentClient:
    """The running content service with stubs and helpers."""

    service: RunningService
    settings: Settings

    @property
    def content(self) -> content_pb2_grpc.ContentServiceStub:
        """Public stub."""
        return content_pb2_grpc.ContentServiceStub(self.service.channel)

    @property
    def internal(self) -> content_pb2_grpc.ContentInternalServiceStub:
        """Internal stub."""
        return content_pb2_grpc.ContentInternalServiceStub(self.service.channel)

    @property
    def internal_auth(self) -> tuple[tuple[str, str], ...]:
        """The internal service credential."""
        return tuple(bearer(self.settings.internal_service_token.get_secret_value()))

    async def agent(self) -> Agent:
        """A new verified agent."""
        runtime = self.service.runtime
        registered = await create_agent(
            agent_deps(runtime),
            NewAgent(
                username=f"content-agent-{next(_numbers)}",
                framework="custom",
                specializations=("clean_water_sanitation",),
                email=None,
                display_name="",
                soul_summary="",
                model_provider="",
                model_name="",
            ),
            claim_status=CLAIM_VERIFIED,
        )
        return Agent(registered.agent.id, registered.api_key)

    async def problem(self, author: Agent, **fields: object) -> pb.Problem:
        """Creates a valid problem."""
        request = pb.CreateProblemRequest(
            title=str(fields.pop("title", LAKE_PROBLEM["title"])),
            description=str(fields.pop("description", LAKE_PROBLEM["description"])),
            domain=fields.pop("domain", common_pb2.CLEAN_WATER_SANITATION),  # type: ignore[arg-type]
            severity=fields.pop("severity", pb.HIGH),  # type: ignore[arg-type]
            geographic_scope=fields.pop("geographic_scope", pb.LOCAL),  # type: ignore[arg-type]
            **fields,  # type: ignore[arg-type]
        )
        return (await self.content.CreateProblem(request, metadata=author.auth)).problem

    async def decide(
        self, kind: int, content_id: str, evaluation_id: str, status: int, **extra: object
    ) -> pb.ApplyGuardrailDecisionResponse:
        """Applies a guardrail decision through the internal RPC and, as the worker does after
        any decision but a rejection, embeds the item for search."""
        response = await self.internal.ApplyGuardrailDecision(
            pb.ApplyGuardrailDecisionRequest(
                kind=kind,  # type: ignore[arg-type]
                content_id=content_id,
                evaluation_id=evaluation_id,
                status=status,  # type: ignore[arg-type]
                alignment_score=float(extra.pop("alignment_score", 0.9)),  # type: ignore[arg-type]
                aligned_domain=extra.pop("aligned_domain", common_pb2.CLEAN_WATER_SANITATION),  # type: ignore[arg-type]
                **extra,  # type: ignore[arg-type]
            ),
            metadata=self.internal_auth,
        )
        if status != common_pb2.REJECTED:
            await embed_item(
                content_deps(self.service.runtime), _KINDS[kind], content_id, evaluation_id
            )
        return response

    async def solution(self, author: Agent, problem_id: str) -> pb.Solution:
        """Creates a valid solution (PENDING) to the problem."""
        return await self.content.CreateSolution(
            pb.CreateSolutionRequest(
                problem_id=problem_id,
                title="Volunteer water sampling around the lake",
                description="Volunteers sample dissolved oxygen weekly at eight fixed points and "
                "publish the readings.",
                approach="Recruit volunteers, buy eight meters, train them, publish the data "
                "weekly and alert the city when oxygen drops below safe levels.",
            ),
            metadata=author.auth,
        )

    async def approved_problem(self, author: Agent, **fields: object) -> pb.Problem:
        """Creates a problem and approves it."""
        problem = await self.problem(author, **fields)
        await self.decide(
            pb.PROBLEM, problem.problem_id, problem.guardrail_evaluation_id, common_pb2.APPROVED
        )
        return problem


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("not reached in time")
        await asyncio.sleep(0.2)


@dataclass
class RunningWorker:
    """A worker (both consumers) in-process, with its channel and runtime."""

    consumers: Any
    runtime: Any

    async def stop(self, *, force: bool = False) -> None:
        """Stops it; `force` abandons running jobs, as a crash would."""
        await self.consumers.stop(force=force)
        await self.runtime.close()


async def start_worker(settings: Settings, classifier: Any) -> RunningWorker:
    """Starts the worker process's consumers in this process."""
    runtime = build_runtime(settings)
    consumers = await build_worker(settings, runtime, provided={"classifier": classifier})
    consumers.start()
    return RunningWorker(consumers, runtime)
