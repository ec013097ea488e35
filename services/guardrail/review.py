"""The human review queue: list, claim exclusively, decide, and apply the decision."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from services.core import errors
from services.core.context import Principal
from services.core.pagination import Page, paginate
from services.core.queues import EvaluationJob
from services.core.validation import Violations, check_required_text
from services.guardrail.decision import Verdict
from services.guardrail.deps import GuardrailDeps
from services.guardrail.records import EvaluationRecord, FlaggedRecord


def _not_found(flagged_id: str) -> errors.NotFound:
    return errors.NotFound("flagged item", flagged_id, reason="FLAGGED_NOT_FOUND")


async def list_flagged(
    deps: GuardrailDeps, *, status: str | None, kind: str | None, limit: int, cursor: str
) -> Page[FlaggedRecord]:
    """Oldest first; WAITING and CLAIMED unless a status is given."""
    statuses = (status,) if status else ("WAITING", "CLAIMED")

    async def fetch(after: list[Any] | None, count: int) -> Sequence[FlaggedRecord]:
        return await deps.store.list_flagged(statuses=statuses, kind=kind, after=after, limit=count)

    return await paginate(
        fetch,
        cursors=deps.cursors,
        scope=f"flagged|{statuses}|{kind}",
        cursor=cursor,
        limit=limit,
        key=lambda item: [item.created_at.isoformat(), item.id],
    )


async def get_flagged(
    deps: GuardrailDeps, flagged_id: str
) -> tuple[FlaggedRecord, EvaluationRecord | None]:
    """The item and its evaluation."""
    item = await deps.store.flagged_item(flagged_id)
    if item is None:
        raise _not_found(flagged_id)
    return item, await deps.store.evaluation(item.evaluation_id)


async def claim_flagged(deps: GuardrailDeps, operator: Principal, flagged_id: str) -> FlaggedRecord:
    """Claims it for `operator`; ALREADY_EXISTS when another operator holds it."""
    item = await deps.store.claim(flagged_id, operator.name)
    if item is not None:
        return item
    current = await deps.store.flagged_item(flagged_id)
    if current is None:
        raise _not_found(flagged_id)
    if current.status == "RESOLVED":
        raise errors.FailedPrecondition("the item was reviewed already", reason="ALREADY_REVIEWED")
    raise errors.AlreadyExists(
        f"the item is claimed by {current.claimed_by}", reason="ALREADY_CLAIMED"
    )


async def review_flagged(
    deps: GuardrailDeps, operator: Principal, flagged_id: str, decision: str, notes: str
) -> FlaggedRecord:
    """The claimer approves or rejects; the content gets the decision; the action is audited."""
    out = Violations()
    if decision not in ("APPROVE", "REJECT"):
        out.add("decision", "must be APPROVE or REJECT")
    check_required_text(notes, out, "notes", 10, 2000)
    out.raise_if_any()
    status = "APPROVED" if decision == "APPROVE" else "REJECTED"
    async with deps.store.transaction() as tx:
        item = await tx.resolve(
            flagged_id, operator=operator.name, decision=status, notes=notes.strip()
        )
        if item is None:
            if await deps.store.flagged_item(flagged_id) is None:
                raise _not_found(flagged_id)
            raise errors.FailedPrecondition(
                "claim the item before reviewing it", reason="NOT_CLAIMED_BY_YOU"
            )
        await tx.audit(
            operator,
            "guardrail.review",
            target_type=item.content_kind,
            target_id=item.content_id,
            details={"decision": status, "flaggedId": flagged_id, "notes": notes.strip()},
        )
        # Applied inside the transaction: if the content service cannot take it, the review
        # rolls back and stays claimed, so the operator can simply retry.
        await deps.apply(
            EvaluationJob(
                evaluation_id=item.evaluation_id,
                kind=item.content_kind,
                content_id=item.content_id,
                author_agent_id="",
                title="",
                body="",
                claimed_domain=None,
            ),
            Verdict(status, "" if status == "APPROVED" else f"rejected on review: {notes.strip()}"),
            None,
        )
    return item
