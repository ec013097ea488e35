"""Operators' actions on humans; each change is audited in its own transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from services.core import errors
from services.core.context import Principal
from services.core.credentials import sessions
from services.core.pagination import Page, paginate
from services.mission.deps import MissionDeps
from services.mission.model import HumanRecord
from services.mission.validation import valid_reason


async def list_humans(deps: MissionDeps, *, cursor: str, limit: int) -> Page[HumanRecord]:
    """Humans, newest first."""

    async def fetch(after: list[Any] | None, count: int) -> Sequence[HumanRecord]:
        return await deps.store.page(after=after, count=count)

    return await paginate(
        fetch,
        cursors=deps.cursors,
        scope="humans:newest",
        cursor=cursor,
        limit=limit,
        key=lambda human: [human.created_at.isoformat(), human.id],
    )


async def set_active(
    deps: MissionDeps, operator: Principal, human_id: str, *, active: bool, reason: str
) -> HumanRecord:
    """Deactivates or reactivates a human; their sessions follow at once. Idempotent."""
    why = valid_reason(reason)
    async with deps.store.transaction() as tx:
        human = await tx.set_active(human_id, active)
        if human is None:
            raise errors.NotFound("human", human_id, reason="HUMAN_NOT_FOUND")
        changed = await tx.set_sessions_active(human.id, active)
        await tx.audit(
            operator,
            "human.reactivate" if active else "human.deactivate",
            target_type="human",
            target_id=human.id,
            details={"reason": why},
        )
    # After the commit: cached session states would otherwise honour the old state a while.
    await sessions.forget(deps.redis, changed)
    return human
