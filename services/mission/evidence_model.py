"""Records of evidence and its verification: what was submitted, the peers' votes, and the rule
that turns votes into a verdict."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from services.mission.model import MissionRecord

MAX_EVIDENCE_BYTES = 10 * 1024 * 1024
"""10 MiB per file."""
REVIEWERS = 3
"""Peers assigned to each piece of evidence the automatic check does not settle."""
PEER_DECISIVE = 0.5
"""The weighted peer score (-1 to 1) must reach this size to decide; closer to 0 (a tie, low
confidence, split votes) an operator decides."""
VOTE_REWARD = 2


class EvidenceStatus(StrEnum):
    """Where a piece of evidence stands (stored lower case)."""

    PENDING = "pending"
    IN_REVIEW = "in_review"
    DISPUTED = "disputed"
    VERIFIED = "verified"
    REJECTED = "rejected"
    APPEALED = "appealed"


OPEN_EVIDENCE = (
    EvidenceStatus.PENDING,
    EvidenceStatus.IN_REVIEW,
    EvidenceStatus.DISPUTED,
    EvidenceStatus.APPEALED,
)
"""Not decided finally: an operator may still decide it."""


class Decider(StrEnum):
    """Who decided."""

    AUTOMATIC = "automatic"
    PEERS = "peers"
    OPERATOR = "operator"


class PairPosition(StrEnum):
    """Where a piece of evidence is in a before/after pair."""

    STANDALONE = "standalone"
    BEFORE = "before"
    AFTER = "after"


@dataclass(frozen=True)
class EvidenceMeta:
    """What the submitter says about the file (validated)."""

    latitude: float | None
    longitude: float | None
    captured_at: datetime | None
    notes: str
    pair_id: str
    sequence: PairPosition


@dataclass(frozen=True)
class StoredFacts:
    """What the stored file is: its address and what was read from it."""

    sha256: str
    size: int
    media_type: str
    width: int = 0
    height: int = 0
    exif_latitude: float | None = None
    exif_longitude: float | None = None
    exif_taken_at: datetime | None = None


@dataclass(frozen=True)
class EvidenceRecord:
    """A piece of evidence."""

    id: str
    mission_id: str
    claim_id: str
    human_id: str
    status: EvidenceStatus
    meta: EvidenceMeta
    facts: StoredFacts
    final_confidence: float | None
    decided_by: Decider | None
    decision_reason: str
    dispute_reason: str
    reward: int
    appealed: bool
    appeal_reason: str
    submitted_at: datetime
    decided_at: datetime | None
    updated_at: datetime


@dataclass(frozen=True)
class VoteRecord:
    """A peer's vote."""

    evidence_id: str
    reviewer_id: str
    mission_id: str
    mission_title: str
    approve: bool
    confidence: float
    reasoning: str
    voted_at: datetime


@dataclass(frozen=True)
class ReviewTask:
    """Evidence waiting for one reviewer's vote."""

    evidence: EvidenceRecord
    mission: MissionRecord
    assigned_at: datetime


@dataclass(frozen=True)
class Progress:
    """A piece of evidence's review so far."""

    assigned: int
    cast: int


@dataclass(frozen=True)
class DisputeRecord:
    """Evidence waiting for an operator, with the votes so far."""

    evidence: EvidenceRecord
    votes: tuple[VoteRecord, ...]


@dataclass(frozen=True)
class Decision:
    """A verdict: approve or reject, how confidently, by whom, why."""

    approve: bool
    confidence: float
    decider: Decider
    reason: str


def peer_decision(votes: Sequence[VoteRecord]) -> Decision | None:
    """The peers' verdict once every vote is in: the mean of the votes' confidences, signed by
    their verdicts. Its size must reach PEER_DECISIVE; otherwise (a tie, doubt, split votes)
    None: an operator decides."""
    if not votes:
        return None
    score = sum(v.confidence if v.approve else -v.confidence for v in votes) / len(votes)
    if abs(score) < PEER_DECISIVE:
        return None
    approvals = sum(v.approve for v in votes)
    return Decision(
        approve=score > 0,
        confidence=round(abs(score), 4),
        decider=Decider.PEERS,
        reason=f"{approvals} of {len(votes)} reviewers approved (weighted score {score:+.2f})",
    )


def mission_reward(token_reward: int, confidence: float) -> int:
    """What verified evidence pays: max(1, floor(reward * confidence))."""
    return max(1, math.floor(token_reward * confidence + 1e-9))
