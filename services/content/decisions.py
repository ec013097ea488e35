"""Recording guardrail decisions on content (the internal RPC's domain function)."""

from __future__ import annotations

from collections.abc import Sequence

from services.content import store
from services.content.deps import ContentDeps
from services.content.model import DECISIONS, MAX_BATCH, Decision
from services.core import errors
from services.core.ids import parse_uuid
from services.core.logging import get_logger

log = get_logger(__name__)


def _violations(decision: Decision, prefix: str = "") -> list[errors.FieldViolation]:
    out = []
    if decision.kind not in store.TABLES:
        out.append(errors.FieldViolation(f"{prefix}kind", "must be PROBLEM, SOLUTION or DEBATE"))
    if parse_uuid(decision.content_id) is None:
        out.append(errors.FieldViolation(f"{prefix}content_id", "must be a UUID"))
    if parse_uuid(decision.evaluation_id) is None:
        out.append(errors.FieldViolation(f"{prefix}evaluation_id", "must be a UUID"))
    if decision.status not in DECISIONS:
        out.append(
            errors.FieldViolation(f"{prefix}status", "must be APPROVED, FLAGGED or REJECTED")
        )
    if not 0 <= decision.alignment_score <= 1:
        out.append(errors.FieldViolation(f"{prefix}alignment_score", "must be between 0 and 1"))
    return out


async def apply_decision(deps: ContentDeps, decision: Decision) -> tuple[bool, bool]:
    """Applies a decision idempotently; returns (applied, stale)."""
    (result,) = await apply_decisions(deps, [decision], prefix=None)
    return result


async def apply_decisions(
    deps: ContentDeps, decisions: Sequence[Decision], *, prefix: str | None = "decisions"
) -> list[tuple[bool, bool]]:
    """Applies decisions idempotently, in order; returns (applied, stale) for each.

    All are checked before any is applied: one invalid decision rejects them all, its fields
    named `decisions[i].…` (no prefix when `prefix` is None: a single decision). A database
    failure part-way leaves the earlier ones applied; applying them again changes nothing.
    """
    if prefix is not None and not 1 <= len(decisions) <= MAX_BATCH:
        raise errors.InvalidArgument(
            [errors.FieldViolation(prefix, f"must have 1 to {MAX_BATCH} decisions")]
        )
    out = [
        violation
        for i, decision in enumerate(decisions)
        for violation in _violations(decision, "" if prefix is None else f"{prefix}[{i}].")
    ]
    if out:
        raise errors.InvalidArgument(out)
    # One after another: nobody waits on a batch, and it holds at most one of the pool's
    # connections at a time, leaving the rest to requests.
    results = [await store.apply_decision(deps.engine, decision) for decision in decisions]
    if any(applied for applied, _ in results):
        deps.pages.invalidate()
    for decision, (_, stale) in zip(decisions, results, strict=True):
        if stale:
            log.info("stale_decision", kind=decision.kind, evaluation_id=decision.evaluation_id)
    return results
