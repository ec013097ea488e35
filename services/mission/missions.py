"""Missions: created by agents from their approved solutions, moderated by the guardrail,
found by humans through lists and geo search."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from services.core import errors, quota
from services.core.context import Principal, PrincipalKind
from services.core.ids import parse_uuid
from services.core.logging import get_logger
from services.core.pagination import Page, paginate
from services.core.queues import EvaluationJob
from services.mission import feed
from services.mission.decomposition import Suggestion
from services.mission.deps import MissionDeps
from services.mission.model import (
    APPROVED,
    MissionDraft,
    MissionEdit,
    MissionQuery,
    MissionRecord,
    MissionStatus,
    SolutionSource,
)
from services.mission.validation import valid_edit, valid_mission, valid_point, valid_query

log = get_logger(__name__)


@dataclass(frozen=True)
class Viewed:
    """A mission and whether this caller may see its exact location."""

    mission: MissionRecord
    exact_location: bool


def evaluation_job(mission: MissionRecord, *, account_age_days: float = 0.0) -> EvaluationJob:
    """The guardrail job for the mission's current text: everything a human would read."""
    fields = mission.fields
    steps = "\n".join(f"{s.step}. {s.text}" for s in fields.instructions)
    proof = "\n".join(f"- {e.description}" for e in fields.evidence_required)
    body = f"{fields.description}\n\nSteps:\n{steps}\n\nEvidence:\n{proof}"
    if fields.location_name:
        body += f"\n\nLocation: {fields.location_name}"
    return EvaluationJob(
        evaluation_id=mission.guardrail_evaluation_id,
        kind="mission",
        content_id=mission.id,
        author_agent_id=mission.author_agent_id,
        title=fields.title,
        body=body,
        claimed_domain=mission.domain,
        author_account_age_days=account_age_days,
    )


async def _submit(deps: MissionDeps, mission: MissionRecord, principal: Principal) -> None:
    """Queues the evaluation after the commit; if Redis refuses, the sweep queues it later."""
    age = 0.0
    if principal.created_at is not None:
        age = (datetime.now(UTC) - principal.created_at).total_seconds() / 86400
    if not await deps.evaluations.enqueue(evaluation_job(mission, account_age_days=age)):
        log.warning("mission_evaluation_not_queued", mission_id=mission.id)


async def _own_solution(
    deps: MissionDeps, principal: Principal, solution_id: str
) -> SolutionSource:
    """The caller's approved solution, as the content service describes it."""
    source = await deps.solutions.approved_solution(solution_id)
    if source is None:
        raise errors.FailedPrecondition(
            "missions come from approved solutions: this one is unknown or not approved yet",
            reason="SOLUTION_NOT_APPROVED",
        )
    if source.author_agent_id != principal.id:
        raise errors.PermissionDenied(
            "only the solution's author makes missions of it", reason="NOT_SOLUTION_AUTHOR"
        )
    return source


async def create_mission(
    deps: MissionDeps, principal: Principal, draft: MissionDraft
) -> MissionRecord:
    """A PENDING mission from one of the caller's approved solutions, queued for evaluation."""
    fields = valid_mission(draft, deps.clock())
    source = await _own_solution(deps, principal, draft.solution_id)
    mission = await deps.missions.insert(fields, source, evaluation_id=str(uuid.uuid4()))
    await _submit(deps, mission, principal)
    log.info("mission_created", mission_id=mission.id, solution_id=source.solution_id)
    return mission


async def get_mission(deps: MissionDeps, principal: Principal | None, mission_id: str) -> Viewed:
    """An approved mission for anyone, any of theirs for its author."""
    mission = await deps.missions.get(mission_id)
    is_author = (
        principal is not None
        and principal.kind is PrincipalKind.AGENT
        and mission is not None
        and principal.id == mission.author_agent_id
    )
    if mission is None or not (is_author or mission.guardrail_status == APPROVED):
        raise errors.NotFound("mission", mission_id, reason="MISSION_NOT_FOUND")
    exact = is_author or (
        principal is not None
        and principal.kind is PrincipalKind.HUMAN
        and await deps.missions.holds_live_claim(mission.id, principal.id)
    )
    return Viewed(mission, exact)


def _sort_key(sort: str) -> Any:
    def key(mission: MissionRecord) -> list[Any]:
        if sort == "distance":
            assert mission.distance_key is not None
            return [mission.distance_key, mission.id]
        if sort == "reward":
            return [mission.fields.token_reward, mission.id]
        return [mission.created_at.isoformat(), mission.id]

    return key


async def list_missions(
    deps: MissionDeps,
    query: MissionQuery,
    *,
    lat: float | None,
    lng: float | None,
    radius_km: int,
    cursor: str,
    limit: int,
) -> Page[MissionRecord]:
    """Approved missions with filters, in the query's order."""
    checked = valid_query(query, lat=lat, lng=lng, radius_km=radius_km)

    async def fetch(after: list[Any] | None, count: int) -> Sequence[MissionRecord]:
        return await deps.missions.page(checked, after=after, count=count)

    scope = f"missions:{checked!r}"
    return await paginate(
        fetch,
        cursors=deps.cursors,
        scope=scope,
        cursor=cursor,
        limit=limit,
        key=_sort_key(checked.sort),
    )


async def list_nearby(
    deps: MissionDeps,
    *,
    lat: float | None,
    lng: float | None,
    radius_km: int,
    cursor: str,
    limit: int,
) -> Page[MissionRecord]:
    """Approved, OPEN, unexpired missions nearest first."""
    point = valid_point(lat, lng, radius_km, names=("lat", "lng", "radius"))

    async def fetch(after: list[Any] | None, count: int) -> Sequence[MissionRecord]:
        return await deps.missions.nearby(*point, after=after, count=count)

    return await paginate(
        fetch,
        cursors=deps.cursors,
        scope=f"nearby:{point}",
        cursor=cursor,
        limit=limit,
        key=_sort_key("distance"),
    )


async def list_agent_missions(
    deps: MissionDeps, principal: Principal, *, cursor: str, limit: int
) -> Page[MissionRecord]:
    """The caller's missions in any state, newest first."""
    query = MissionQuery(status=None, author_agent_id=principal.id)

    async def fetch(after: list[Any] | None, count: int) -> Sequence[MissionRecord]:
        return await deps.missions.page(query, after=after, count=count)

    return await paginate(
        fetch,
        cursors=deps.cursors,
        scope=f"agent-missions:{principal.id}",
        cursor=cursor,
        limit=limit,
        key=_sort_key("newest"),
    )


def _own(mission: MissionRecord | None, principal: Principal, mission_id: str) -> MissionRecord:
    if mission is None:
        raise errors.NotFound("mission", mission_id, reason="MISSION_NOT_FOUND")
    if mission.author_agent_id != principal.id:
        if mission.guardrail_status != APPROVED:
            raise errors.NotFound("mission", mission_id, reason="MISSION_NOT_FOUND")
        raise errors.PermissionDenied(
            "only the mission's author changes it", reason="NOT_MISSION_AUTHOR"
        )
    return mission


def _no_active_claims(mission: MissionRecord, action: str) -> None:
    if mission.active_claims > 0:
        raise errors.Conflict(
            f"humans hold {mission.active_claims} active claim(s): the mission cannot be "
            f"{action} until they finish or give up",
            reason="MISSION_HAS_ACTIVE_CLAIMS",
        )


async def update_mission(
    deps: MissionDeps, principal: Principal, mission_id: str, edit: MissionEdit
) -> MissionRecord:
    """The author's edit of the version they read; moderated again."""
    async with deps.missions.transaction() as tx:
        mission = _own(await tx.get(mission_id, lock=True), principal, mission_id)
        fields = valid_edit(edit, mission.fields, deps.clock())
        if edit.version != mission.version:
            raise errors.Conflict(
                f"the mission changed since you read it (version {mission.version} now): "
                "read it again",
                reason="VERSION_MISMATCH",
            )
        if mission.status is MissionStatus.ARCHIVED:
            raise errors.Conflict("the mission is archived", reason="MISSION_ARCHIVED")
        _no_active_claims(mission, "edited")
        if fields.max_claims < mission.active_claims:
            raise errors.InvalidArgument.one("max_claims", "must not be below the active claims")
        updated = await tx.replace_fields(mission.id, fields, evaluation_id=str(uuid.uuid4()))
    await _submit(deps, updated, principal)
    return updated


async def archive_mission(
    deps: MissionDeps, principal: Principal, mission_id: str
) -> MissionRecord:
    """Archives the author's mission (soft; idempotent)."""
    async with deps.missions.transaction() as tx:
        mission = _own(await tx.get(mission_id, lock=True), principal, mission_id)
        if mission.status is MissionStatus.ARCHIVED:
            return mission
        _no_active_claims(mission, "archived")
        return await tx.set_status(mission.id, MissionStatus.ARCHIVED)


async def apply_decision(
    deps: MissionDeps, *, mission_id: str, evaluation_id: str, status: str, explanation: str
) -> bool:
    """Records the guardrail's decision; True when it was stale (nothing changed)."""
    if status not in ("approved", "flagged", "rejected"):
        raise errors.InvalidArgument.one("status", "must be APPROVED, FLAGGED or REJECTED")
    applied = await deps.missions.apply_decision(mission_id, evaluation_id, status, explanation)
    if not applied:
        log.info("stale_mission_decision", mission_id=mission_id, evaluation_id=evaluation_id)
    elif status == APPROVED:
        mission = await deps.missions.get(mission_id)
        if mission is not None:
            await feed.mission_published(deps, mission)
    return not applied


DECOMPOSITIONS_PER_DAY = 10


async def decompose_solution(
    deps: MissionDeps, principal: Principal, solution_id: str
) -> tuple[SolutionSource, list[Suggestion]]:
    """Suggested missions for one of the caller's approved solutions (not stored)."""
    if parse_uuid(solution_id) is None:
        raise errors.InvalidArgument.one("solution_id", "must be a solution id (UUID)")
    source = await _own_solution(deps, principal, solution_id)
    now = deps.clock()
    midnight = datetime.combine(now.date() + timedelta(days=1), time(), tzinfo=UTC)
    key = f"bw:decompose:{principal.id}:{now.date().isoformat()}"
    await quota.require(
        deps.redis,
        key,
        limit=DECOMPOSITIONS_PER_DAY,
        window_seconds=int((midnight - now).total_seconds()) + 1,
        what="decompositions a day",
        reason="DECOMPOSE_LIMIT",
    )
    try:
        suggestions = await deps.decomposer.decompose(source)
    except errors.Unavailable:
        await quota.refund(deps.redis, key)  # the planner failed, not the caller
        raise
    log.info("solution_decomposed", solution_id=solution_id, suggestions=len(suggestions))
    return source, suggestions
