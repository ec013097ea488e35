"""The human review queue: list, claim exclusively, decide, and apply the decision."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from services.core import audit, errors
from services.core.context import Principal
from services.core.ids import parse_uuid
from services.core.pagination import Page, paginate
from services.core.queues import EvaluationJob
from services.core.validation import Violations, check_required_text
from services.guardrail import store
from services.guardrail.decision import Verdict
from services.guardrail.deps import GuardrailDeps


def _id(value: str) -> UUID:
    parsed = parse_uuid(value)
    if parsed is None:
        raise errors.NotFound("flagged item", value, reason="FLAGGED_NOT_FOUND")
    return parsed


async def list_flagged(
    deps: GuardrailDeps, *, status: str | None, kind: str | None, limit: int, cursor: str
) -> Page[Any]:
    """Oldest first; WAITING and CLAIMED unless a status is given."""
    statuses = (status,) if status else ("WAITING", "CLAIMED")

    async def fetch(key: list[Any] | None, count: int) -> Sequence[Any]:
        after = (datetime.fromisoformat(key[0]), UUID(key[1])) if key else None
        return await store.list_flagged(
            deps.engine, statuses=statuses, kind=kind, after=after, limit=count
        )

    return await paginate(
        fetch,
        cursors=deps.cursors,
        scope=f"flagged|{statuses}|{kind}",
        cursor=cursor,
        limit=limit,
        key=lambda row: [row.created_at.isoformat(), str(row.id)],
    )


async def get_flagged(deps: GuardrailDeps, flagged_id: str) -> tuple[Any, Any]:
    """The item and its evaluation."""
    row = await store.flagged_item(deps.engine, _id(flagged_id))
    if row is None:
        raise errors.NotFound("flagged item", flagged_id, reason="FLAGGED_NOT_FOUND")
    return row, await store.evaluation(deps.engine, row.evaluation_id)


async def claim_flagged(deps: GuardrailDeps, operator: Principal, flagged_id: str) -> Any:
    """Claims it for `operator`; ALREADY_EXISTS when another operator holds it."""
    parsed = _id(flagged_id)
    row = await store.claim(deps.engine, parsed, operator.name)
    if row is not None:
        return row
    current = await store.flagged_item(deps.engine, parsed)
    if current is None:
        raise errors.NotFound("flagged item", flagged_id, reason="FLAGGED_NOT_FOUND")
    if current.status == "RESOLVED":
        raise errors.FailedPrecondition("the item was reviewed already", reason="ALREADY_REVIEWED")
    raise errors.AlreadyExists(
        f"the item is claimed by {current.claimed_by}", reason="ALREADY_CLAIMED"
    )


async def review_flagged(
    deps: GuardrailDeps, operator: Principal, flagged_id: str, decision: str, notes: str
) -> Any:
    """The claimer approves or rejects; the content gets the decision; the action is audited."""
    out = Violations()
    if decision not in ("APPROVE", "REJECT"):
        out.add("decision", "must be APPROVE or REJECT")
    check_required_text(notes, out, "notes", 10, 2000)
    out.raise_if_any()
    parsed = _id(flagged_id)
    status = "APPROVED" if decision == "APPROVE" else "REJECTED"
    async with deps.engine.begin() as conn:
        row = await store.resolve(
            conn, parsed, operator=operator.name, decision=status, notes=notes.strip()
        )
        if row is None:
            current = await store.flagged_item(deps.engine, parsed)
            if current is None:
                raise errors.NotFound("flagged item", flagged_id, reason="FLAGGED_NOT_FOUND")
            raise errors.FailedPrecondition(
                "claim the item before reviewing it", reason="NOT_CLAIMED_BY_YOU"
            )
        await audit.record(
            conn,
            operator=operator,
            action="guardrail.review",
            target_type=row.content_kind,
            target_id=str(row.content_id),
            details={"decision": status, "flaggedId": flagged_id, "notes": notes.strip()},
        )
        # Applied inside the transaction: if the content service cannot take it, the review
        # rolls back and stays claimed, so the operator can simply retry.
        await deps.apply(
            EvaluationJob(
                evaluation_id=str(row.evaluation_id),
                kind=row.content_kind,
                content_id=str(row.content_id),
                author_agent_id="",
                title="",
                body="",
                claimed_domain=None,
            ),
            Verdict(status, "" if status == "APPROVED" else f"rejected on review: {notes.strip()}"),
            None,
        )
    return row
