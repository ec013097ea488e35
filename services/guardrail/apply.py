"""Applying guardrail decisions to content through the content service's internal RPC."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import grpc
from betterworld.common.v1 import common_pb2
from betterworld.content.v1 import content_pb2 as content_pb
from betterworld.content.v1 import content_pb2_grpc

from services.core.logging import get_logger
from services.core.queues import EvaluationJob
from services.guardrail.classifier.base import Classification
from services.guardrail.decision import Verdict

log = get_logger(__name__)
_KINDS = {
    "problem": content_pb.PROBLEM,
    "solution": content_pb.SOLUTION,
    "debate": content_pb.DEBATE,
}


Apply = Callable[[EvaluationJob, Verdict, Classification | None], Awaitable[None]]
"""Records a verdict on the content an evaluation job is about."""


def decision_applier(channel: grpc.aio.Channel, token: str) -> Apply:
    """An `apply` for the pipeline that calls ContentInternalService.ApplyGuardrailDecision."""
    stub = content_pb2_grpc.ContentInternalServiceStub(channel)

    async def apply(
        job: EvaluationJob, verdict: Verdict, classification: Classification | None
    ) -> None:
        request = content_pb.ApplyGuardrailDecisionRequest(
            kind=_KINDS[job.kind],
            content_id=job.content_id,
            evaluation_id=job.evaluation_id,
            status=common_pb2.GuardrailStatus.Value(verdict.status),
            explanation=verdict.explanation,
        )
        if classification is not None:
            request.alignment_score = classification.alignment_score
            if classification.aligned_domain:
                request.aligned_domain = common_pb2.Domain.Value(
                    classification.aligned_domain.upper()
                )
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
        response = await stub.ApplyGuardrailDecision(
            request, metadata=(("authorization", f"Bearer {token}"),), timeout=10
        )
        if response.stale:
            log.info("decision_stale", evaluation_id=job.evaluation_id)

    return apply
