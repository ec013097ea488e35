"""Claims: humans take a mission's slots, report progress, give up; overdue ones expire."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from services.core import errors
from services.core.context import Principal
from services.core.logging import get_logger
from services.core.pagination import Page, paginate
from services.mission import feed
from services.mission.deps import MissionDeps
from services.mission.mission_store import AlreadyClaimed
from services.mission.model import APPROVED, ClaimEdit, ClaimRecord, ClaimStatus, MissionStatus
from services.mission.validation import valid_claim_edit

log = get_logger(__name__)
MAX_LIVE_CLAIMS = 3


def _not_found(mission_id: str) -> errors.NotFound:
    return errors.NotFound("mission", mission_id, reason="MISSION_NOT_FOUND")


async def claim_mission(deps: MissionDeps, principal: Principal, mission_id: str) -> ClaimRecord:
    """Takes a slot, atomically: the human's row and then the mission's are locked, so
    neither the mission's limit nor the human's can be passed by concurrent claims."""
    now = deps.clock()
    try:
        async with deps.missions.transaction() as tx:
            if not await tx.lock_human(principal.id):
                raise errors.Unauthenticated("the account no longer exists", reason="TOKEN_INVALID")
            mission = await tx.get(mission_id, lock=True)
            if mission is None or mission.guardrail_status != APPROVED:
                raise _not_found(mission_id)
            if await tx.holds_live_claim(mission.id, principal.id):
                raise AlreadyClaimed(mission.id)
            if mission.status is MissionStatus.EXPIRED or mission.fields.expires_at <= now:
                raise errors.Conflict("the mission has expired", reason="MISSION_EXPIRED")
            if mission.status is MissionStatus.FULL or (
                mission.status is MissionStatus.OPEN
                and mission.active_claims + mission.completed_claims >= mission.fields.max_claims
            ):
                raise errors.Conflict("every slot of this mission is taken", reason="MISSION_FULL")
            if mission.status is not MissionStatus.OPEN:
                raise errors.Conflict(
                    f"the mission is {mission.status.value} and takes no claims",
                    reason="MISSION_NOT_OPEN",
                )
            if await tx.live_claims_of(principal.id) >= MAX_LIVE_CLAIMS:
                raise errors.Conflict(
                    f"you hold {MAX_LIVE_CLAIMS} active claims: finish or give one up first",
                    reason="CLAIM_LIMIT",
                )
            claim = await tx.add_claim(mission.id, principal.id, now + deps.claim_deadline)
    except AlreadyClaimed:
        raise errors.AlreadyExists(
            "you hold a claim on this mission already", reason="ALREADY_CLAIMED"
        ) from None
    log.info("mission_claimed", mission_id=claim.mission_id, claim_id=claim.id)
    claimed = await deps.missions.get(claim.mission_id)
    if claimed is not None:
        await feed.mission_claimed(deps, claimed)
    return claim


async def update_claim(
    deps: MissionDeps, principal: Principal, mission_id: str, claim_id: str, edit: ClaimEdit
) -> ClaimRecord:
    """Progress or notes on the caller's active claim, or giving it up (the slot frees)."""
    valid_claim_edit(edit)
    async with deps.missions.transaction() as tx:
        claim = await tx.get_claim(claim_id, lock=True)
        if claim is None or claim.human_id != principal.id or claim.mission_id != mission_id:
            raise errors.NotFound("claim", claim_id, reason="CLAIM_NOT_FOUND")
        if claim.status is not ClaimStatus.ACTIVE:
            raise errors.Conflict(f"the claim is {claim.status.value}", reason="CLAIM_NOT_ACTIVE")
        if edit.abandon:
            await tx.get(mission_id, lock=True)  # the slot count changes under its lock
            return await tx.update_claim(claim.id, status=ClaimStatus.ABANDONED, notes=edit.notes)
        return await tx.update_claim(
            claim.id, progress_percent=edit.progress_percent, notes=edit.notes
        )


async def list_my_claims(
    deps: MissionDeps,
    principal: Principal,
    *,
    status: ClaimStatus | None,
    cursor: str,
    limit: int,
) -> Page[ClaimRecord]:
    """The caller's claims, newest first."""

    async def fetch(after: list[Any] | None, count: int) -> Sequence[ClaimRecord]:
        return await deps.missions.claims_page(principal.id, status, after=after, count=count)

    return await paginate(
        fetch,
        cursors=deps.cursors,
        scope=f"claims:{principal.id}:{status}",
        cursor=cursor,
        limit=limit,
        key=lambda claim: [claim.claimed_at.isoformat(), claim.id],
    )


async def expire_overdue(deps: MissionDeps, *, batch: int = 500) -> tuple[int, int]:
    """One round of the expiry sweep: overdue claims, then missions past their expiry.
    Idempotent; returns (claims, missions) expired."""
    claims = 0
    while True:
        done = await deps.missions.expire_overdue_claims(limit=batch)
        claims += done
        if done < batch:
            break
    expired_missions = await deps.missions.expire_missions()
    if claims or expired_missions:
        log.info("expired", claims=claims, missions=expired_missions)
    return claims, expired_missions
