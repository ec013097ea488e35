"""Applying guardrail decisions through the owning service's internal RPCs: problems,
solutions and debates to the content service, missions to the mission service."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import grpc
from betterworld.common.v1 import common_pb2
from betterworld.content.v1 import content_pb2 as content_pb
from betterworld.content.v1 import content_pb2_grpc
from betterworld.mission.v1 import missions_pb2 as missions_pb
from betterworld.mission.v1 import missions_pb2_grpc
from prometheus_client import Histogram

from services.core.logging import get_logger
from services.core.queues import EvaluationJob
from services.guardrail.classifier.base import Classification
from services.guardrail.decision import Verdict

log = get_logger(__name__)
_TIMEOUT_SECONDS = 10
MISSION_KIND = "mission"
MAX_BATCH = 100
"""Decisions per ApplyGuardrailDecisions call at most (the contract's limit)."""
BATCH_SIZE = Histogram(
    "guardrail_decision_batch_size",
    "Decisions per ApplyGuardrailDecisions call (GUARDRAIL_DECISION_BATCH_SECONDS tunes it)",
    buckets=(1, 2, 5, 10, 20, 50, 100),
)


Apply = Callable[[EvaluationJob, Verdict, Classification | None], Awaitable[None]]
"""Records a verdict on the content an evaluation job is about."""


def decision_request(
    job: EvaluationJob, verdict: Verdict, classification: Classification | None
) -> content_pb.ApplyGuardrailDecisionRequest:
    """The internal RPC's message for a verdict on the job's content."""
    request = content_pb.ApplyGuardrailDecisionRequest(
        kind=content_pb.ContentKind.Value(job.kind.upper()),
        content_id=job.content_id,
        evaluation_id=job.evaluation_id,
        status=common_pb2.GuardrailStatus.Value(verdict.status),
        explanation=verdict.explanation,
    )
    if classification is not None:
        request.alignment_score = classification.alignment_score
        if classification.aligned_domain:
            request.aligned_domain = common_pb2.Domain.Value(classification.aligned_domain.upper())
        scores = classification.solution_scores
        if scores is not None and job.kind == "solution":
            request.scores.CopyFrom(
                content_pb.SolutionScores(
                    impact=scores.impact,
                    feasibility=scores.feasibility,
                    cost_efficiency=scores.cost_efficiency,
                    composite=scores.composite,
                )
            )
    return request


def decision_applier(channel: grpc.aio.Channel, token: str) -> Apply:
    """An `apply` that calls ContentInternalService.ApplyGuardrailDecision once per verdict
    (operator reviews: one at a time, and the operator waits for it)."""
    stub = content_pb2_grpc.ContentInternalServiceStub(channel)

    async def apply(
        job: EvaluationJob, verdict: Verdict, classification: Classification | None
    ) -> None:
        response = await stub.ApplyGuardrailDecision(
            decision_request(job, verdict, classification),
            metadata=_auth(token),
            timeout=_TIMEOUT_SECONDS,
        )
        if response.stale:
            log.info("decision_stale", evaluation_id=job.evaluation_id)

    return apply


class DecisionBatcher:
    """An `apply` for the worker that sends the verdicts reached within `linger_seconds` of
    the first one in a single ApplyGuardrailDecisions call (at most MAX_BATCH each).

    Each `apply` returns once its own decision is recorded, or raises what the call raised,
    so a failed call fails (and retries) every job in it; applying is idempotent. One call for
    several decisions spares the content service a request's fixed cost per item, which on
    a busy machine is most of a decision's cost there.
    """

    def __init__(self, channel: grpc.aio.Channel, token: str, *, linger_seconds: float) -> None:
        self._stub = content_pb2_grpc.ContentInternalServiceStub(channel)
        self._token = token
        self._linger = linger_seconds
        self._pending: list[
            tuple[content_pb.ApplyGuardrailDecisionRequest, asyncio.Future[bool]]
        ] = []
        self._timer: asyncio.TimerHandle | None = None
        self._sending: set[asyncio.Task[None]] = set()

    async def apply(
        self, job: EvaluationJob, verdict: Verdict, classification: Classification | None
    ) -> None:
        """Queues the verdict for the next call and waits until that call has recorded it."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        self._pending.append((decision_request(job, verdict, classification), future))
        if len(self._pending) >= MAX_BATCH or self._linger <= 0:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self._linger, self._flush)
        if await future:
            log.info("decision_stale", evaluation_id=job.evaluation_id)

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending = self._pending, []
        if batch:
            task = asyncio.get_running_loop().create_task(self._send(batch))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send(
        self, batch: list[tuple[content_pb.ApplyGuardrailDecisionRequest, asyncio.Future[bool]]]
    ) -> None:
        BATCH_SIZE.observe(len(batch))
        try:
            response = await self._stub.ApplyGuardrailDecisions(
                content_pb.ApplyGuardrailDecisionsRequest(decisions=[r for r, _ in batch]),
                metadata=_auth(self._token),
                timeout=_TIMEOUT_SECONDS,
            )
            if len(response.results) != len(batch):
                raise RuntimeError("ApplyGuardrailDecisions answered a different count")
        except Exception as exc:  # every job of the batch fails its attempt with it
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), result in zip(batch, response.results, strict=True):
            if not future.done():  # a job abandoned meanwhile (forced stop)
                future.set_result(result.stale)

    async def aclose(self) -> None:
        """Sends what is queued and waits for the calls in flight."""
        self._flush()
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)


def mission_decision_applier(channel: grpc.aio.Channel, token: str) -> Apply:
    """An `apply` that records verdicts on missions through the mission service's
    MissionInternalService (missions are few: one call per verdict)."""
    stub = missions_pb2_grpc.MissionInternalServiceStub(channel)

    async def apply(
        job: EvaluationJob, verdict: Verdict, classification: Classification | None
    ) -> None:
        response = await stub.ApplyMissionDecision(
            missions_pb.ApplyMissionDecisionRequest(
                mission_id=job.content_id,
                evaluation_id=job.evaluation_id,
                status=common_pb2.GuardrailStatus.Value(verdict.status),
                explanation=verdict.explanation,
            ),
            metadata=_auth(token),
            timeout=_TIMEOUT_SECONDS,
        )
        if response.stale:
            log.info("decision_stale", evaluation_id=job.evaluation_id)

    return apply


def by_kind(content: Apply, missions: Apply) -> Apply:
    """Sends each verdict to the service that owns its kind of content."""

    async def apply(
        job: EvaluationJob, verdict: Verdict, classification: Classification | None
    ) -> None:
        target = missions if job.kind == MISSION_KIND else content
        await target(job, verdict, classification)

    return apply


def _auth(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


class AuthorStanding:
    """The author's approved items, asked of the content service (GetAuthorStanding)."""

    def __init__(self, channel: grpc.aio.Channel, token: str) -> None:
        self._stub = content_pb2_grpc.ContentInternalServiceStub(channel)
        self._token = token

    async def approved_items(self, author_agent_id: str, *, at_most: int) -> int:
        """Counted up to `at_most` (the trust rule asks only whether there are that many)."""
        if at_most <= 0:
            return 0
        response = await self._stub.GetAuthorStanding(
            content_pb.GetAuthorStandingRequest(author_agent_id=author_agent_id, at_most=at_most),
            metadata=_auth(self._token),
            timeout=_TIMEOUT_SECONDS,
        )
        return int(response.approved_items)
