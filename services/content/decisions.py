"""Recording guardrail decisions on content (the internal RPC's domain function)."""

from __future__ import annotations

from collections.abc import Sequence

from services.content import store
from services.content.deps import ContentDeps
from services.content.embedding import EMBEDDED_KINDS
from services.content.model import DECISIONS, MAX_BATCH, Decision
from services.content.queue import EmbeddingJob
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
    for decision, (applied, stale) in zip(decisions, results, strict=True):
        if stale:
            log.info("stale_decision", kind=decision.kind, evaluation_id=decision.evaluation_id)
        elif applied:
            await _queue_embedding(deps, decision)
    return results


async def _queue_embedding(deps: ContentDeps, decision: Decision) -> None:
    """Queues the search vector of text that was just decided on (unless rejected): the
    worker computes it. If Redis refuses, the sweep's backfill embeds it later."""
    if decision.status == "REJECTED" or decision.kind not in EMBEDDED_KINDS:
        return
    if deps.embeddings is not None:
        await deps.embeddings.enqueue(
            EmbeddingJob(decision.kind, decision.content_id, decision.evaluation_id)
        )


async def author_standing(deps: ContentDeps, author_agent_id: str, *, at_most: int) -> int:
    """Approved items of an author, counted up to `at_most` (the guardrail's trust input)."""
    if parse_uuid(author_agent_id) is None:
        raise errors.InvalidArgument.one("author_agent_id", "must be a UUID")
    if at_most < 0:
        raise errors.InvalidArgument.one("at_most", "must not be negative")
    return await store.approved_items(deps.engine, author_agent_id, at_most=at_most)
