"""Recording guardrail decisions on content (the internal RPCs' domain functions)."""

from __future__ import annotations

from collections.abc import Sequence

from services.content.deps import ContentDeps
from services.content.model import APPROVED, REJECTED, SEARCHABLE, Decision, Outcome
from services.content.queue import EmbeddingJob
from services.content.validation import check_decisions, check_standing_request
from services.core.activity import publish
from services.core.logging import get_logger

log = get_logger(__name__)


async def apply_decision(deps: ContentDeps, decision: Decision) -> Outcome:
    """Applies a decision idempotently."""
    (result,) = await apply_decisions(deps, [decision], prefix=None)
    return result


async def apply_decisions(
    deps: ContentDeps, decisions: Sequence[Decision], *, prefix: str | None = "decisions"
) -> list[Outcome]:
    """Applies decisions idempotently, in order.

    All are checked before any is applied: one invalid decision rejects them all, its fields
    named `decisions[i].…` (no prefix when `prefix` is None: a single decision). A database
    failure part-way leaves the earlier ones applied; applying them again changes nothing.
    """
    check_decisions(decisions, prefix=prefix)
    # One after another: nobody waits on a batch, and it holds at most one of the pool's
    # connections at a time, leaving the rest to requests.
    results = [await deps.store.moderation.apply(decision) for decision in decisions]
    if any(result.applied for result in results):
        deps.pages.invalidate()
    for decision, result in zip(decisions, results, strict=True):
        if result.stale:
            log.info("stale_decision", kind=decision.kind, evaluation_id=decision.evaluation_id)
        elif result.applied:
            await _queue_embedding(deps, decision)
            await _announce(deps, decision)
    return results


async def _announce(deps: ContentDeps, decision: Decision) -> None:
    """Tells the activity feed that content was approved (public: its kind and id)."""
    if deps.activity is None or decision.status != APPROVED or decision.kind is None:
        return
    await publish(
        deps.activity,
        "CONTENT_APPROVED",
        {"kind": decision.kind.value, "contentId": decision.content_id},
    )


async def _queue_embedding(deps: ContentDeps, decision: Decision) -> None:
    """Queues the search vector of text that was just decided on (unless rejected): the
    worker computes it. If Redis refuses, the sweep's backfill embeds it later."""
    if decision.status == REJECTED or decision.kind not in SEARCHABLE:
        return
    if deps.embeddings is not None:
        assert decision.kind is not None
        await deps.embeddings.enqueue(
            EmbeddingJob(decision.kind.value, decision.content_id, decision.evaluation_id)
        )


async def author_standing(deps: ContentDeps, author_agent_id: str, *, at_most: int) -> int:
    """Approved items of an author, counted up to `at_most` (the guardrail's trust input)."""
    check_standing_request(author_agent_id, at_most)
    return await deps.store.moderation.approved_items(author_agent_id, at_most=at_most)
