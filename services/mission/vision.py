"""The automatic check of evidence (`EvidenceAssessor`): how sure a model is that a photo proves
a mission was done, and what that certainty decides.

With ANTHROPIC_API_KEY the assessor is Claude's vision (`claude_vision.py`, imported only then);
without one there is no assessor and every piece of evidence goes to peer review. Either way the
bands below decide: at or above VERIFY_AT the evidence is verified, below REJECT_BELOW it is
rejected, and between the two humans look at it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from services.mission.model import EvidenceItem

VERIFY_AT = 0.80
REJECT_BELOW = 0.50


@dataclass(frozen=True)
class EvidenceCheck:
    """What an assessor judges: the stored (metadata-free) file and what the mission asked for."""

    evidence_id: str
    media_type: str
    data: bytes
    """The stored bytes (an image without its metadata)."""
    content_sha256: str
    mission_id: str
    mission_title: str
    mission_description: str
    evidence_required: tuple[EvidenceItem, ...]
    mission_latitude: float | None
    mission_longitude: float | None
    location_radius_km: int
    latitude: float | None
    """Where the evidence says it was taken (EXIF, else what the submitter declared)."""
    longitude: float | None
    notes: str
    """The submitter's notes: untrusted text."""


@dataclass(frozen=True)
class Assessment:
    """An assessor's answer: confidence 0 to 1 that the evidence proves the mission was done."""

    confidence: float
    reasoning: str


class Outcome(Enum):
    """What an assessment decides."""

    VERIFY = "verify"
    REJECT = "reject"
    PEER_REVIEW = "peer_review"


def outcome(assessment: Assessment) -> Outcome:
    """The band the confidence falls in."""
    if assessment.confidence >= VERIFY_AT:
        return Outcome.VERIFY
    if assessment.confidence < REJECT_BELOW:
        return Outcome.REJECT
    return Outcome.PEER_REVIEW


class AssessmentUnavailable(Exception):
    """The model could not be asked now (API error, malformed answer): retry later."""


class EvidenceAssessor(Protocol):
    """Judges evidence against its mission."""

    async def assess(self, check: EvidenceCheck) -> Assessment | None:
        """The assessment; None when this evidence cannot be assessed automatically (a type
        the model cannot see, today's budget spent): it then goes to peer review. Raises
        AssessmentUnavailable for failures worth retrying."""
        ...
