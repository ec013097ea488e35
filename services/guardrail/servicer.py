"""gRPC adapter of GuardrailService: unpack the request, call one domain function, pack."""

from __future__ import annotations

import grpc
from betterworld.common.v1 import common_pb2
from betterworld.guardrail.v1 import guardrail_pb2 as pb
from betterworld.guardrail.v1 import guardrail_pb2_grpc as pb_grpc

from services.core.context import caller, current_principal
from services.core.convert import (
    content_kind_name,
    content_kind_value,
    domain_value,
    status_value,
    timestamp,
)
from services.guardrail import evaluations, precheck, review, stats
from services.guardrail.deps import GuardrailDeps
from services.guardrail.evaluations import PendingEvaluation
from services.guardrail.records import EvaluationRecord, FlaggedRecord

Context = grpc.aio.ServicerContext


def evaluation_message(row: EvaluationRecord | PendingEvaluation) -> pb.Evaluation:
    """An Evaluation from a recorded evaluation or a pending job."""
    if isinstance(row, PendingEvaluation):
        return pb.Evaluation(
            evaluation_id=row.evaluation_id,
            content_type=content_kind_value(row.content_kind),
            content_id=row.content_id,
            decision=common_pb2.PENDING,
        )
    message = pb.Evaluation(
        evaluation_id=row.id,
        content_type=content_kind_value(row.content_kind),
        content_id=row.content_id,
        decision=common_pb2.GuardrailStatus.Value(row.decision),
        explanation=row.explanation,
        rules_rejected=row.rules_rejected,
        matches=[
            pb.RuleMatch(category=hit.category, rule_id=hit.rule, suppressed=hit.suppressed)
            for hit in row.rule_hits
        ],
        aligned_domain=domain_value(row.aligned_domain),
        harm_risk=row.harm_risk or "",
        classifier=row.classifier or "",
        cache_hit=row.cache_hit,
        trust_tier=row.trust_tier,
        timings_ms=row.timings_ms,
        attempts=row.attempts,
        created_at=timestamp(row.created_at),
    )
    if row.alignment_score is not None:
        message.alignment_score = row.alignment_score
    return message


def flagged_message(
    row: FlaggedRecord, evaluation: EvaluationRecord | None = None
) -> pb.FlaggedItem:
    """A FlaggedItem from its record (and, for GetFlagged, its evaluation)."""
    message = pb.FlaggedItem(
        flagged_id=row.id,
        evaluation_id=row.evaluation_id,
        content_type=content_kind_value(row.content_kind),
        content_id=row.content_id,
        reason=row.reason,
        status=pb.FlaggedItem.Status.Value(row.status),
        claimed_by=row.claimed_by or "",
        claimed_at=timestamp(row.claimed_at),
        review_decision=status_value(row.review_decision),
        review_notes=row.review_notes or "",
        created_at=timestamp(row.created_at),
    )
    if evaluation is not None:
        message.evaluation.CopyFrom(evaluation_message(evaluation))
    return message


class GuardrailServicer(pb_grpc.GuardrailServiceServicer):
    """betterworld.guardrail.v1.GuardrailService."""

    def __init__(self, deps: GuardrailDeps) -> None:
        self._deps = deps

    async def PrecheckContent(  # noqa: N802
        self, request: pb.PrecheckContentRequest, context: Context
    ) -> pb.PrecheckContentResponse:
        result = await precheck.precheck(
            self._deps,
            content_type=content_kind_name(request.content_type),
            title=request.title,
            text=request.text,
        )
        layer_a = result.layer_a
        response = pb.PrecheckContentResponse(
            passes_rules=not layer_a.rejected,
            matches=[
                pb.RuleMatch(category=m.category, rule_id=m.rule_id, suppressed=m.suppressed)
                for m in layer_a.matches
            ],
            ruleset_version=layer_a.ruleset_version,
            cached=result.cached is not None,
        )
        if result.cached is not None:
            response.alignment_score = result.cached.alignment_score
            response.aligned_domain = domain_value(result.cached.aligned_domain)
        return response

    async def GetEvaluation(  # noqa: N802
        self, request: pb.GetEvaluationRequest, context: Context
    ) -> pb.Evaluation:
        row = await evaluations.get_evaluation(
            self._deps, current_principal(), request.evaluation_id
        )
        return evaluation_message(row)

    async def ListFlagged(  # noqa: N802
        self, request: pb.ListFlaggedRequest, context: Context
    ) -> pb.ListFlaggedResponse:
        status = pb.FlaggedItem.Status.Name(request.status) if request.status in (1, 2, 3) else None
        page = await review.list_flagged(
            self._deps,
            status=status,
            kind=content_kind_name(request.content_type) or None,
            limit=request.limit,
            cursor=request.cursor,
        )
        return pb.ListFlaggedResponse(
            data=[flagged_message(r) for r in page.items],
            meta=common_pb2.PageMeta(
                next_cursor=page.next_cursor, has_more=page.has_more, limit=page.limit
            ),
        )

    async def GetFlagged(  # noqa: N802
        self, request: pb.GetFlaggedRequest, context: Context
    ) -> pb.FlaggedItem:
        row, evaluation = await review.get_flagged(self._deps, request.flagged_id)
        return flagged_message(row, evaluation)

    async def ClaimFlagged(  # noqa: N802
        self, request: pb.ClaimFlaggedRequest, context: Context
    ) -> pb.FlaggedItem:
        row = await review.claim_flagged(self._deps, caller(), request.flagged_id)
        return flagged_message(row)

    async def ReviewFlagged(  # noqa: N802
        self, request: pb.ReviewFlaggedRequest, context: Context
    ) -> pb.FlaggedItem:
        decision = {
            pb.ReviewFlaggedRequest.APPROVE: "APPROVE",
            pb.ReviewFlaggedRequest.REJECT: "REJECT",
        }.get(request.decision, "")
        row = await review.review_flagged(
            self._deps, caller(), request.flagged_id, decision, request.notes
        )
        return flagged_message(row)

    async def GetGuardrailStats(  # noqa: N802
        self, request: pb.GetGuardrailStatsRequest, context: Context
    ) -> pb.GuardrailStats:
        s = await stats.guardrail_stats(self._deps, request.window_hours)
        return pb.GuardrailStats(
            evaluations=s.evaluations,
            approval_rate=s.approval_rate,
            flag_rate=s.flag_rate,
            reject_rate=s.reject_rate,
            cache_hit_rate=s.cache_hit_rate,
            layer_a_p50_ms=s.layer_a_ms[0],
            layer_a_p99_ms=s.layer_a_ms[1],
            layer_b_p50_ms=s.layer_b_ms[0],
            layer_b_p99_ms=s.layer_b_ms[1],
            budget_used_cents=s.budget_used_cents,
            budget_limit_cents=s.budget_limit_cents,
            queue_waiting=s.queue.get("waiting", 0),
            queue_active=s.queue.get("active", 0),
            queue_delayed=s.queue.get("delayed", 0),
            flagged_waiting=s.flagged_waiting,
        )
