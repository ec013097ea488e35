"""Reading evaluations: the caller's own, PENDING while the job is still queued."""

from __future__ import annotations

from dataclasses import dataclass

from services.core import errors
from services.core.context import Principal, PrincipalKind
from services.core.ids import parse_uuid
from services.guardrail.deps import GuardrailDeps
from services.guardrail.records import EvaluationRecord


@dataclass(frozen=True)
class PendingEvaluation:
    """An evaluation whose job has not finished."""

    evaluation_id: str
    content_kind: str
    content_id: str


async def get_evaluation(
    deps: GuardrailDeps, principal: Principal | None, evaluation_id: str
) -> EvaluationRecord | PendingEvaluation:
    """The recorded evaluation, a PendingEvaluation, or NOT_FOUND (also for others' items)."""
    not_found = errors.NotFound("evaluation", evaluation_id, reason="EVALUATION_NOT_FOUND")
    parsed = parse_uuid(evaluation_id)
    if parsed is None or principal is None:
        raise not_found
    operator = principal.kind is PrincipalKind.OPERATOR
    record = await deps.store.evaluation(str(parsed))
    if record is not None:
        if not operator and record.author_agent_id != principal.id:
            raise not_found
        return record
    job = await deps.queue.getJob(str(parsed))
    if job is None or (not operator and job.data.get("author_agent_id") != principal.id):
        raise not_found
    return PendingEvaluation(str(parsed), job.data["kind"], job.data["content_id"])
