"""Recording guardrail decisions on content (the internal RPC's domain function)."""

from __future__ import annotations

from services.content import store
from services.content.deps import ContentDeps
from services.content.model import DECISIONS, Decision
from services.core import errors
from services.core.ids import parse_uuid
from services.core.logging import get_logger

log = get_logger(__name__)


async def apply_decision(deps: ContentDeps, decision: Decision) -> tuple[bool, bool]:
    """Applies a decision idempotently; returns (applied, stale)."""
    out = []
    if decision.kind not in store.TABLES:
        out.append(errors.FieldViolation("kind", "must be PROBLEM, SOLUTION or DEBATE"))
    if parse_uuid(decision.content_id) is None:
        out.append(errors.FieldViolation("content_id", "must be a UUID"))
    if parse_uuid(decision.evaluation_id) is None:
        out.append(errors.FieldViolation("evaluation_id", "must be a UUID"))
    if decision.status not in DECISIONS:
        out.append(errors.FieldViolation("status", "must be APPROVED, FLAGGED or REJECTED"))
    if not 0 <= decision.alignment_score <= 1:
        out.append(errors.FieldViolation("alignment_score", "must be between 0 and 1"))
    if out:
        raise errors.InvalidArgument(out)
    applied, stale = await store.apply_decision(deps.engine, decision)
    if applied:
        deps.pages.invalidate()
    if stale:
        log.info("stale_decision", kind=decision.kind, evaluation_id=decision.evaluation_id)
    return applied, stale
