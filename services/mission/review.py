"""Verification of evidence: the automatic check, peer review, operators' decisions, and what a
verdict does (the claim completes, the reward is paid).

A verdict and everything it causes commit together, under the evidence's row lock: the claim's
new status, the mission's counts, the reward's ledger row (idempotency key per evidence) and the
history entry. A check or vote that runs twice finds the evidence decided and changes nothing;
even if it did not, the ledger would refuse to pay the same key twice.

Lock order: evidence → claim → the earner's balance → mission. Claims lock human → mission, and
the human lock (NO KEY UPDATE) does not conflict with the ledger's foreign-key checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from services.core import errors, quota
from services.core.context import Principal
from services.core.logging import get_logger
from services.core.pagination import Page, paginate
from services.mission import feed
from services.mission.deps import MissionDeps
from services.mission.evidence_model import (
    OPEN_EVIDENCE,
    REVIEWERS,
    VOTE_REWARD,
    Decider,
    Decision,
    DisputeRecord,
    EvidenceRecord,
    EvidenceStatus,
    PairPosition,
    ReviewTask,
    VoteRecord,
    mission_reward,
    peer_decision,
)
from services.mission.evidence_store import EvidenceStore
from services.mission.evidence_validation import valid_long_reason, valid_vote
from services.mission.files import FileMissing, StorageUnavailable
from services.mission.ledger_store import LedgerStore
from services.mission.mission_store import MissionStore
from services.mission.model import LIVE_CLAIMS, ClaimStatus, Movement
from services.mission.vision import (
    Assessment,
    AssessmentUnavailable,
    EvidenceCheck,
    Outcome,
    outcome,
)

log = get_logger(__name__)
VOTES_PER_HOUR = 30


async def start_verification(
    deps: MissionDeps, tx: EvidenceStore, record: EvidenceRecord
) -> EvidenceRecord:
    """New evidence waits for the automatic check when there is one, else goes to peers."""
    if deps.assessor is not None:
        return record
    return await send_to_peers(tx, record)


async def send_to_peers(tx: EvidenceStore, record: EvidenceRecord) -> EvidenceRecord:
    """Assigns reviewers (IN_REVIEW), or, when nobody is eligible, hands it to an operator."""
    reviewers = await tx.eligible_reviewers(
        submitter_id=record.human_id, mission_id=record.mission_id, count=REVIEWERS
    )
    if not reviewers:
        updated = await tx.set_status(
            record.id, EvidenceStatus.DISPUTED, dispute_reason="NO_REVIEWERS"
        )
        await tx.record(
            record.id,
            actor_kind="system",
            actor_id="",
            action="disputed",
            details={"reason": "NO_REVIEWERS"},
        )
        return updated
    await tx.assign(record.id, reviewers)
    await tx.record(
        record.id,
        actor_kind="system",
        actor_id="",
        action="assigned",
        details={"reviewers": reviewers},
    )
    return await tx.set_status(record.id, EvidenceStatus.IN_REVIEW)


async def decide(
    tx: EvidenceStore, record: EvidenceRecord, decision: Decision, *, actor: tuple[str, str]
) -> EvidenceRecord:
    """Records a verdict and its effects, in the caller's transaction (the evidence's row must
    be locked): verified evidence completes its claim and pays the reward once (for a
    before/after pair, when both halves are verified, at the lower confidence); a rejection
    lets the human submit again while the claim lasts."""
    missions = tx.bound(MissionStore)
    claim = await missions.get_claim(record.claim_id, lock=True)
    kind, actor_id = actor
    await tx.record(
        record.id,
        actor_kind=kind,
        actor_id=actor_id,
        action="verified" if decision.approve else "rejected",
        details={"confidence": decision.confidence, "reason": decision.reason[:500]},
    )
    siblings = [e for e in await tx.of_claim(record.claim_id) if e.id != record.id]
    if not decision.approve:
        if (
            claim is not None
            and claim.status is ClaimStatus.SUBMITTED
            and not any(e.status in OPEN_EVIDENCE for e in siblings)
        ):
            await missions.update_claim(claim.id, status=ClaimStatus.ACTIVE)
        return await tx.decide(record.id, decision, reward=0)
    confidence = decision.confidence
    if record.meta.sequence is not PairPosition.STANDALONE:
        other = [
            e
            for e in siblings
            if e.meta.pair_id == record.meta.pair_id
            and e.meta.sequence is not record.meta.sequence
            and e.status is EvidenceStatus.VERIFIED
        ]
        if not other:
            # The claim completes when the other half is verified.
            return await tx.decide(record.id, decision, reward=0)
        confidence = min(confidence, *(e.final_confidence or 0.0 for e in other))
    mission = await missions.get(record.mission_id)
    assert mission is not None  # evidence rows cascade with their mission
    posted = await tx.bound(LedgerStore).post(
        Movement(
            human_id=record.human_id,
            amount=mission_reward(mission.fields.token_reward, confidence),
            type="EARN_MISSION",
            idempotency_key=f"evidence:{record.id}",
            reference_id=record.id,
            description="Verified mission evidence",
        )
    )
    if claim is not None and claim.status in LIVE_CLAIMS:
        await missions.get(record.mission_id, lock=True)
        await missions.complete_claim(claim.id)
    log.info(
        "evidence_rewarded",
        evidence_id=record.id,
        reward=posted.transaction.amount,
        replayed=posted.replayed,
    )
    return await tx.decide(record.id, decision, reward=posted.transaction.amount)


# Peer review -----------------------------------------------------------------------------


async def vote(
    deps: MissionDeps,
    principal: Principal,
    evidence_id: str,
    *,
    approve: bool,
    confidence: float,
    reasoning: str,
) -> tuple[VoteRecord, EvidenceRecord]:
    """An assigned reviewer's vote; pays VOTE_REWARD, and the last vote decides (or hands
    the evidence to an operator)."""
    reasoning = valid_vote(confidence, reasoning)
    key = f"bw:votes:{principal.id}"
    await quota.require(
        deps.redis,
        key,
        limit=VOTES_PER_HOUR,
        window_seconds=3600,
        what="votes an hour",
        reason="VOTE_LIMIT",
    )
    try:
        async with deps.evidence.transaction() as tx:
            record = await tx.get(evidence_id, lock=True)
            if record is None:
                raise errors.NotFound("evidence", evidence_id, reason="EVIDENCE_NOT_FOUND")
            assignment = await tx.assignment(record.id, principal.id)
            if assignment is None:
                raise errors.PermissionDenied(
                    "you are not a reviewer of this evidence", reason="NOT_ASSIGNED"
                )
            if assignment.verdict is not None:
                raise errors.AlreadyExists("you voted on it already", reason="ALREADY_VOTED")
            if record.status is not EvidenceStatus.IN_REVIEW:
                raise errors.Conflict(
                    f"the review is closed (the evidence is {record.status.value})",
                    reason="REVIEW_CLOSED",
                )
            await tx.record_vote(
                record.id,
                principal.id,
                approve=approve,
                confidence=confidence,
                reasoning=reasoning,
            )
            await tx.bound(LedgerStore).post(
                Movement(
                    human_id=principal.id,
                    amount=VOTE_REWARD,
                    type="EARN_PEER_REVIEW",
                    idempotency_key=f"peer-review:{record.id}",
                    reference_id=record.id,
                    description="Peer review vote",
                )
            )
            await tx.record(
                record.id,
                actor_kind="human",
                actor_id=principal.id,
                action="voted",
                details={"approve": approve, "confidence": confidence},
            )
            votes = await tx.votes(record.id)
            record = await _after_vote(tx, record, votes)
    except BaseException:
        await quota.refund(deps.redis, key)
        raise
    mine = next(v for v in votes if v.reviewer_id == principal.id)
    log.info("peer_vote", evidence_id=record.id, status=record.status.value)
    await feed.tokens_earned(deps, principal.id, VOTE_REWARD, "EARN_PEER_REVIEW", record.id)
    await _announce(deps, record)
    return mine, record


async def _announce(deps: MissionDeps, record: EvidenceRecord) -> None:
    """Tells the feed about a verification that just committed."""
    if record.status is EvidenceStatus.VERIFIED:
        await feed.evidence_verified(deps, record)


async def _after_vote(
    tx: EvidenceStore, record: EvidenceRecord, votes: Sequence[VoteRecord]
) -> EvidenceRecord:
    """Once every assigned reviewer voted: the peers' verdict, or a dispute for an operator."""
    if len(votes) < (await tx.progress(record.id)).assigned:
        return record
    decision = peer_decision(votes)
    if decision is not None:
        return await decide(tx, record, decision, actor=("system", "peers"))
    reason = "TIE" if _tied(votes) else "LOW_CONFIDENCE"
    await tx.record(
        record.id, actor_kind="system", actor_id="", action="disputed", details={"reason": reason}
    )
    return await tx.set_status(record.id, EvidenceStatus.DISPUTED, dispute_reason=reason)


def _tied(votes: Sequence[VoteRecord]) -> bool:
    return abs(sum(v.confidence if v.approve else -v.confidence for v in votes)) < 1e-9


async def pending_reviews(
    deps: MissionDeps, principal: Principal, *, cursor: str, limit: int
) -> Page[ReviewTask]:
    """Evidence waiting for the caller's vote, oldest assignment first."""

    async def fetch(after: list[Any] | None, count: int) -> Sequence[ReviewTask]:
        rows = await deps.evidence.waiting_for(principal.id, after=after, count=count)
        found = await deps.missions.get_many({record.mission_id for record, _ in rows})
        return [
            ReviewTask(record, found[record.mission_id], assigned_at)
            for record, assigned_at in rows
            if record.mission_id in found
        ]

    return await paginate(
        fetch,
        cursors=deps.cursors,
        scope=f"reviews:{principal.id}",
        cursor=cursor,
        limit=limit,
        key=lambda t: [t.assigned_at.isoformat(), t.evidence.id],
    )


async def review_history(
    deps: MissionDeps, principal: Principal, *, cursor: str, limit: int
) -> Page[VoteRecord]:
    """The caller's votes, newest first."""

    async def fetch(after: list[Any] | None, count: int) -> Sequence[VoteRecord]:
        return await deps.evidence.votes_of(principal.id, after=after, count=count)

    return await paginate(
        fetch,
        cursors=deps.cursors,
        scope=f"votes:{principal.id}",
        cursor=cursor,
        limit=limit,
        key=lambda v: [v.voted_at.isoformat(), v.evidence_id],
    )


# Operators ---------------------------------------------------------------------------------


async def list_disputes(deps: MissionDeps, *, cursor: str, limit: int) -> Page[DisputeRecord]:
    """Evidence waiting for an operator, oldest first, with the votes so far."""

    async def fetch(after: list[Any] | None, count: int) -> Sequence[DisputeRecord]:
        rows = await deps.evidence.disputes(after=after, count=count)
        votes = await deps.evidence.votes_on([r.id for r in rows])
        return [DisputeRecord(r, tuple(votes[r.id])) for r in rows]

    def key(d: DisputeRecord) -> list[Any]:
        return [d.evidence.updated_at.isoformat(), d.evidence.id]

    return await paginate(
        fetch, cursors=deps.cursors, scope="disputes", cursor=cursor, limit=limit, key=key
    )


async def resolve_dispute(
    deps: MissionDeps, operator: Principal, evidence_id: str, *, approve: bool, reasoning: str
) -> EvidenceRecord:
    """An operator decides open evidence, finally (approval at confidence 1)."""
    reasoning = valid_long_reason(reasoning, "reasoning")
    async with deps.evidence.transaction() as tx:
        record = await tx.get(evidence_id, lock=True)
        if record is None:
            raise errors.NotFound("evidence", evidence_id, reason="EVIDENCE_NOT_FOUND")
        if record.status not in OPEN_EVIDENCE:
            raise errors.Conflict(
                f"the evidence is {record.status.value} already", reason="ALREADY_DECIDED"
            )
        decided = await decide(
            tx,
            record,
            Decision(approve, 1.0, Decider.OPERATOR, reasoning),
            actor=("operator", operator.id),
        )
        await tx.audit(
            operator,
            "evidence.resolve",
            target_type="evidence",
            target_id=record.id,
            details={"approve": approve, "reasoning": reasoning[:500]},
        )
    log.info("dispute_resolved", evidence_id=record.id, approve=approve)
    await _announce(deps, decided)
    return decided


# The automatic check ------------------------------------------------------------------------


async def check_round(
    deps: MissionDeps, *, batch: int = 10, lease_seconds: float = 300, max_attempts: int = 3
) -> int:
    """One round of the automatic check (worker): PENDING evidence is assessed and decided, or
    sent to peers; evidence whose checks kept failing goes to peers too. Returns how many
    pieces of evidence left PENDING."""
    assessor = deps.assessor
    if assessor is None:
        return 0
    moved = 0
    for record in await deps.evidence.take_unchecked(
        lease_seconds=lease_seconds, max_attempts=max_attempts, limit=batch
    ):
        try:
            assessment = await assessor.assess(await _check_of(deps, record))
        except AssessmentUnavailable as exc:
            log.warning("evidence_check_failed", evidence_id=record.id, error=str(exc)[:200])
            continue
        except errors.Unavailable:
            log.warning("evidence_check_file_unavailable", evidence_id=record.id)
            continue
        moved += await _apply_check(deps, record.id, assessment)
    for record in await deps.evidence.stuck_unchecked(max_attempts=max_attempts, limit=batch):
        moved += await _apply_check(deps, record.id, None)
    return moved


async def _check_of(deps: MissionDeps, record: EvidenceRecord) -> EvidenceCheck:
    mission = await deps.missions.get(record.mission_id)
    assert mission is not None  # evidence rows cascade with their mission
    try:
        data = b"".join([chunk async for chunk in deps.files.open(record.facts.sha256)])
    except (FileMissing, StorageUnavailable):
        raise errors.Unavailable("the evidence file cannot be read now") from None
    fields = mission.fields
    exif = record.facts.exif_latitude is not None
    return EvidenceCheck(
        evidence_id=record.id,
        media_type=record.facts.media_type,
        data=data,
        content_sha256=record.facts.sha256,
        mission_id=mission.id,
        mission_title=fields.title,
        mission_description=fields.description,
        evidence_required=fields.evidence_required,
        mission_latitude=fields.latitude,
        mission_longitude=fields.longitude,
        location_radius_km=fields.location_radius_km,
        latitude=record.facts.exif_latitude if exif else record.meta.latitude,
        longitude=record.facts.exif_longitude if exif else record.meta.longitude,
        notes=record.meta.notes,
    )


async def _apply_check(deps: MissionDeps, evidence_id: str, assessment: Assessment | None) -> int:
    """Decides by the assessment's band, or sends to peers (no assessment); 1 when the
    evidence was still PENDING."""
    async with deps.evidence.transaction() as tx:
        record = await tx.get(evidence_id, lock=True)
        if record is None or record.status is not EvidenceStatus.PENDING:
            return 0
        if assessment is None:
            await send_to_peers(tx, record)
            return 1
        band = outcome(assessment)
        await tx.record(
            record.id,
            actor_kind="automatic",
            actor_id="",
            action="checked",
            details={"confidence": assessment.confidence, "outcome": band.value},
        )
        if band is Outcome.PEER_REVIEW:
            await send_to_peers(tx, record)
        else:
            record = await decide(
                tx,
                record,
                Decision(
                    band is Outcome.VERIFY,
                    assessment.confidence,
                    Decider.AUTOMATIC,
                    assessment.reasoning,
                ),
                actor=("automatic", ""),
            )
    await _announce(deps, record)
    return 1
