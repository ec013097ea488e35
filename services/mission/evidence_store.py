"""Evidence rows, their peer reviews and their history (`EvidenceStore`)."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, literal, or_, select, update
from sqlalchemy.engine import Row

from services.core.ids import parse_uuid
from services.core.store import SqlStore
from services.mission.evidence_model import (
    Decider,
    Decision,
    EvidenceMeta,
    EvidenceRecord,
    EvidenceStatus,
    PairPosition,
    Progress,
    StoredFacts,
    VoteRecord,
)
from services.mission.model import LIVE_CLAIMS
from services.mission.tables import (
    evidence,
    evidence_history,
    humans,
    mission_claims,
    missions,
    peer_reviews,
)


def _evidence(row: Row[Any]) -> EvidenceRecord:
    return EvidenceRecord(
        id=str(row.id),
        mission_id=str(row.mission_id),
        claim_id=str(row.claim_id),
        human_id=str(row.human_id),
        status=EvidenceStatus(row.status),
        meta=EvidenceMeta(
            latitude=row.latitude,
            longitude=row.longitude,
            captured_at=row.captured_at,
            notes=row.notes,
            pair_id=row.pair_id,
            sequence=PairPosition(row.sequence),
        ),
        facts=StoredFacts(
            sha256=row.sha256,
            size=row.size_bytes,
            media_type=row.media_type,
            width=row.width,
            height=row.height,
            exif_latitude=row.exif_latitude,
            exif_longitude=row.exif_longitude,
            exif_taken_at=row.exif_taken_at,
        ),
        final_confidence=row.final_confidence,
        decided_by=Decider(row.decided_by) if row.decided_by else None,
        decision_reason=row.decision_reason,
        dispute_reason=row.dispute_reason,
        reward=row.reward,
        appealed=row.appealed,
        appeal_reason=row.appeal_reason,
        submitted_at=row.submitted_at,
        decided_at=row.decided_at,
        updated_at=row.updated_at,
    )


def _vote(row: Row[Any]) -> VoteRecord:
    return VoteRecord(
        evidence_id=str(row.evidence_id),
        reviewer_id=str(row.reviewer_id),
        mission_id=str(row.mission_id),
        mission_title=row.title,
        approve=row.verdict == "approve",
        confidence=row.confidence,
        reasoning=row.reasoning,
        voted_at=row.voted_at,
    )


_VOTE_COLUMNS = (
    peer_reviews.c.evidence_id,
    peer_reviews.c.reviewer_id,
    peer_reviews.c.verdict,
    peer_reviews.c.confidence,
    peer_reviews.c.reasoning,
    peer_reviews.c.voted_at,
    evidence.c.mission_id,
    missions.c.title,
)


def _votes_query() -> Any:
    return (
        select(*_VOTE_COLUMNS)
        .select_from(
            peer_reviews.join(evidence, evidence.c.id == peer_reviews.c.evidence_id).join(
                missions, missions.c.id == evidence.c.mission_id
            )
        )
        .where(peer_reviews.c.verdict.is_not(None))
    )


def _before(column_time: Any, column_id: Any, after: list[Any] | None) -> Any:
    """Keyset condition for pages newest first on (time, id)."""
    if after is None:
        return literal(True)
    at, last = datetime.fromisoformat(after[0]), uuid.UUID(after[1])
    return or_(column_time < at, and_(column_time == at, column_id < last))


def _after(column_time: Any, column_id: Any, after: list[Any] | None) -> Any:
    """Keyset condition for pages oldest first on (time, id)."""
    if after is None:
        return literal(True)
    at, last = datetime.fromisoformat(after[0]), uuid.UUID(after[1])
    return or_(column_time > at, and_(column_time == at, column_id > last))


class EvidenceStore(SqlStore):
    """Evidence, peer reviews and evidence history. Ids are strings; a malformed one finds
    nothing."""

    async def insert(
        self,
        *,
        claim_id: str,
        mission_id: str,
        human_id: str,
        meta: EvidenceMeta,
        facts: StoredFacts,
        status: EvidenceStatus,
    ) -> EvidenceRecord:
        """A new piece of evidence."""
        statement = (
            insert(evidence)
            .values(
                mission_id=uuid.UUID(mission_id),
                claim_id=uuid.UUID(claim_id),
                human_id=uuid.UUID(human_id),
                status=status.value,
                media_type=facts.media_type,
                size_bytes=facts.size,
                sha256=facts.sha256,
                width=facts.width,
                height=facts.height,
                latitude=meta.latitude,
                longitude=meta.longitude,
                captured_at=meta.captured_at,
                exif_latitude=facts.exif_latitude,
                exif_longitude=facts.exif_longitude,
                exif_taken_at=facts.exif_taken_at,
                notes=meta.notes,
                pair_id=meta.pair_id,
                sequence=meta.sequence.value,
            )
            .returning(evidence)
        )
        async with self._db.connect() as conn:
            return _evidence((await conn.execute(statement)).one())

    async def get(self, evidence_id: str, *, lock: bool = False) -> EvidenceRecord | None:
        """One piece of evidence, or None; `lock` holds its row until the transaction ends."""
        parsed = parse_uuid(evidence_id)
        if parsed is None:
            return None
        query = select(evidence).where(evidence.c.id == parsed)
        if lock:
            query = query.with_for_update()
        async with self._db.connect() as conn:
            row = (await conn.execute(query)).first()
        return _evidence(row) if row else None

    async def mission_page(
        self, mission_id: str, human_id: str | None, *, after: list[Any] | None, count: int
    ) -> list[EvidenceRecord]:
        """The mission's evidence newest first (only `human_id`'s when given); keyset
        [submitted_at ISO, id]."""
        parsed = parse_uuid(mission_id)
        if parsed is None:
            return []
        query = select(evidence).where(evidence.c.mission_id == parsed)
        if human_id is not None:
            query = query.where(evidence.c.human_id == uuid.UUID(human_id))
        query = (
            query.where(_before(evidence.c.submitted_at, evidence.c.id, after))
            .order_by(evidence.c.submitted_at.desc(), evidence.c.id.desc())
            .limit(count)
        )
        async with self._db.connect() as conn:
            return [_evidence(row) for row in (await conn.execute(query)).all()]

    async def of_claim(self, claim_id: str) -> list[EvidenceRecord]:
        """Every piece of evidence of a claim, oldest first."""
        query = (
            select(evidence)
            .where(evidence.c.claim_id == uuid.UUID(claim_id))
            .order_by(evidence.c.submitted_at, evidence.c.id)
        )
        async with self._db.connect() as conn:
            return [_evidence(row) for row in (await conn.execute(query)).all()]

    async def set_status(
        self, evidence_id: str, status: EvidenceStatus, *, dispute_reason: str | None = None
    ) -> EvidenceRecord:
        """Moves the evidence to `status` (and records why an operator is needed)."""
        values: dict[str, Any] = {"status": status.value, "updated_at": func.now()}
        if dispute_reason is not None:
            values["dispute_reason"] = dispute_reason
        return await self._update(evidence_id, values)

    async def decide(self, evidence_id: str, decision: Decision, *, reward: int) -> EvidenceRecord:
        """Records the verdict: VERIFIED or REJECTED, its confidence, decider and reason."""
        status = EvidenceStatus.VERIFIED if decision.approve else EvidenceStatus.REJECTED
        return await self._update(
            evidence_id,
            {
                "status": status.value,
                "final_confidence": decision.confidence,
                "decided_by": decision.decider.value,
                "decision_reason": decision.reason,
                "reward": reward,
                "decided_at": func.now(),
                "updated_at": func.now(),
            },
        )

    async def appeal(self, evidence_id: str, reason: str) -> EvidenceRecord:
        """The rejection is appealed: APPEALED, for an operator."""
        return await self._update(
            evidence_id,
            {
                "status": EvidenceStatus.APPEALED.value,
                "appealed": True,
                "appeal_reason": reason,
                "dispute_reason": "APPEAL",
                "updated_at": func.now(),
            },
        )

    async def _update(self, evidence_id: str, values: dict[str, Any]) -> EvidenceRecord:
        statement = (
            update(evidence)
            .where(evidence.c.id == uuid.UUID(evidence_id))
            .values(**values)
            .returning(evidence)
        )
        async with self._db.connect() as conn:
            return _evidence((await conn.execute(statement)).one())

    # Peer review ----------------------------------------------------------------------------

    async def eligible_reviewers(
        self, *, submitter_id: str, mission_id: str, count: int
    ) -> list[str]:
        """Up to `count` verified, active humans other than the submitter who hold no live
        claim on the mission: those with the fewest reviews waiting first, ties at random."""
        waiting = (
            select(func.count())
            .select_from(peer_reviews)
            .where(peer_reviews.c.reviewer_id == humans.c.id)
            .where(peer_reviews.c.verdict.is_(None))
            .scalar_subquery()
        )
        claimant = (
            select(mission_claims.c.id)
            .where(mission_claims.c.human_id == humans.c.id)
            .where(mission_claims.c.mission_id == uuid.UUID(mission_id))
            .where(mission_claims.c.status.in_([s.value for s in LIVE_CLAIMS]))
            .exists()
        )
        query = (
            select(humans.c.id)
            .where(humans.c.id != uuid.UUID(submitter_id))
            .where(humans.c.is_active.is_(True))
            .where(humans.c.email_verified_at.is_not(None))
            .where(~claimant)
            .order_by(waiting, func.random())
            .limit(count)
        )
        async with self._db.connect() as conn:
            return [str(r) for r in (await conn.execute(query)).scalars().all()]

    async def assign(self, evidence_id: str, reviewer_ids: list[str]) -> None:
        """Assigns the reviewers."""
        if not reviewer_ids:
            return
        async with self._db.connect() as conn:
            await conn.execute(
                insert(peer_reviews),
                [
                    {"evidence_id": uuid.UUID(evidence_id), "reviewer_id": uuid.UUID(r)}
                    for r in reviewer_ids
                ],
            )

    async def assignment(self, evidence_id: str, reviewer_id: str) -> Row[Any] | None:
        """The reviewer's assignment row on the evidence, or None."""
        parsed = parse_uuid(evidence_id)
        if parsed is None:
            return None
        query = (
            select(peer_reviews)
            .where(peer_reviews.c.evidence_id == parsed)
            .where(peer_reviews.c.reviewer_id == uuid.UUID(reviewer_id))
        )
        async with self._db.connect() as conn:
            return (await conn.execute(query)).first()

    async def record_vote(
        self,
        evidence_id: str,
        reviewer_id: str,
        *,
        approve: bool,
        confidence: float,
        reasoning: str,
    ) -> bool:
        """Fills in the reviewer's vote; False when it was cast already."""
        statement = (
            update(peer_reviews)
            .where(peer_reviews.c.evidence_id == uuid.UUID(evidence_id))
            .where(peer_reviews.c.reviewer_id == uuid.UUID(reviewer_id))
            .where(peer_reviews.c.verdict.is_(None))
            .values(
                verdict="approve" if approve else "reject",
                confidence=confidence,
                reasoning=reasoning,
                voted_at=func.now(),
            )
            .returning(peer_reviews.c.evidence_id)
        )
        async with self._db.connect() as conn:
            return (await conn.execute(statement)).first() is not None

    async def votes(self, evidence_id: str) -> list[VoteRecord]:
        """The votes cast on the evidence, in order."""
        return (await self.votes_on([evidence_id]))[evidence_id]

    async def votes_on(self, evidence_ids: Collection[str]) -> dict[str, list[VoteRecord]]:
        """The votes cast on each of the evidence items, in order, in one query (an item without
        votes maps to an empty list)."""
        found: dict[str, list[VoteRecord]] = {i: [] for i in evidence_ids}
        if not found:
            return found
        query = (
            _votes_query()
            .where(peer_reviews.c.evidence_id.in_([uuid.UUID(i) for i in found]))
            .order_by(peer_reviews.c.voted_at)
        )
        async with self._db.connect() as conn:
            for row in (await conn.execute(query)).all():
                vote = _vote(row)
                found[vote.evidence_id].append(vote)
        return found

    async def progress(self, evidence_id: str) -> Progress:
        """Reviewers assigned and votes cast."""
        query = select(func.count(), func.count(peer_reviews.c.verdict)).where(
            peer_reviews.c.evidence_id == uuid.UUID(evidence_id)
        )
        async with self._db.connect() as conn:
            assigned, cast = (await conn.execute(query)).one()
        return Progress(int(assigned), int(cast))

    async def waiting_for(
        self, reviewer_id: str, *, after: list[Any] | None, count: int
    ) -> list[tuple[EvidenceRecord, datetime]]:
        """Evidence in review waiting for the reviewer's vote, oldest assignment first; keyset
        [assigned_at ISO, evidence id]."""
        query = (
            select(evidence, peer_reviews.c.assigned_at)
            .join(peer_reviews, peer_reviews.c.evidence_id == evidence.c.id)
            .where(peer_reviews.c.reviewer_id == uuid.UUID(reviewer_id))
            .where(peer_reviews.c.verdict.is_(None))
            .where(evidence.c.status == EvidenceStatus.IN_REVIEW.value)
            .where(_after(peer_reviews.c.assigned_at, evidence.c.id, after))
            .order_by(peer_reviews.c.assigned_at, evidence.c.id)
            .limit(count)
        )
        async with self._db.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [(_evidence(row), row.assigned_at) for row in rows]

    async def votes_of(
        self, reviewer_id: str, *, after: list[Any] | None, count: int
    ) -> list[VoteRecord]:
        """The reviewer's votes newest first; keyset [voted_at ISO, evidence id]."""
        query = (
            _votes_query()
            .where(peer_reviews.c.reviewer_id == uuid.UUID(reviewer_id))
            .where(_before(peer_reviews.c.voted_at, peer_reviews.c.evidence_id, after))
            .order_by(peer_reviews.c.voted_at.desc(), peer_reviews.c.evidence_id.desc())
            .limit(count)
        )
        async with self._db.connect() as conn:
            return [_vote(row) for row in (await conn.execute(query)).all()]

    # Operators and sweeps ---------------------------------------------------------------------

    async def disputes(self, *, after: list[Any] | None, count: int) -> list[EvidenceRecord]:
        """Evidence waiting for an operator, oldest first; keyset [updated_at ISO, id]."""
        query = (
            select(evidence)
            .where(
                evidence.c.status.in_(
                    [EvidenceStatus.DISPUTED.value, EvidenceStatus.APPEALED.value]
                )
            )
            .where(_after(evidence.c.updated_at, evidence.c.id, after))
            .order_by(evidence.c.updated_at, evidence.c.id)
            .limit(count)
        )
        async with self._db.connect() as conn:
            return [_evidence(row) for row in (await conn.execute(query)).all()]

    async def take_unchecked(
        self, *, lease_seconds: float, max_attempts: int, limit: int
    ) -> list[EvidenceRecord]:
        """PENDING evidence for the automatic check, leased: each row taken gets one more
        attempt and is not handed out again for `lease_seconds`, so a check that dies is
        retried and two workers never check the same evidence at once."""
        statement = (
            update(evidence)
            .where(
                evidence.c.id.in_(
                    select(evidence.c.id)
                    .where(evidence.c.status == EvidenceStatus.PENDING.value)
                    .where(evidence.c.check_attempts < max_attempts)
                    .where(
                        or_(
                            evidence.c.check_attempts == 0,
                            evidence.c.updated_at
                            < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, lease_seconds),
                        )
                    )
                    .order_by(evidence.c.updated_at)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            )
            .values(check_attempts=evidence.c.check_attempts + 1, updated_at=func.now())
            .returning(evidence)
        )
        async with self._db.atomic() as conn:
            return [_evidence(row) for row in (await conn.execute(statement)).all()]

    async def stuck_unchecked(self, *, max_attempts: int, limit: int) -> list[EvidenceRecord]:
        """PENDING evidence whose automatic checks all failed."""
        query = (
            select(evidence)
            .where(evidence.c.status == EvidenceStatus.PENDING.value)
            .where(evidence.c.check_attempts >= max_attempts)
            .limit(limit)
        )
        async with self._db.connect() as conn:
            return [_evidence(row) for row in (await conn.execute(query)).all()]

    async def referenced(self, keys: list[str]) -> set[str]:
        """Which of these content addresses a row names."""
        if not keys:
            return set()
        query = select(evidence.c.sha256).where(evidence.c.sha256.in_(keys)).distinct()
        async with self._db.connect() as conn:
            return set((await conn.execute(query)).scalars().all())

    async def record(
        self,
        evidence_id: str,
        *,
        actor_kind: str,
        actor_id: str,
        action: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Appends a step to the evidence's history (in the caller's transaction)."""
        async with self._db.connect() as conn:
            await conn.execute(
                insert(evidence_history).values(
                    evidence_id=uuid.UUID(evidence_id),
                    actor_kind=actor_kind,
                    actor_id=actor_id,
                    action=action,
                    details=details or {},
                    # The step's own time: several steps of one transaction keep their order.
                    created_at=func.clock_timestamp(),
                )
            )

    async def history(self, evidence_id: str) -> list[Row[Any]]:
        """The evidence's steps, in order."""
        query = (
            select(evidence_history)
            .where(evidence_history.c.evidence_id == uuid.UUID(evidence_id))
            .order_by(evidence_history.c.created_at, evidence_history.c.id)
        )
        async with self._db.connect() as conn:
            return list((await conn.execute(query)).all())
