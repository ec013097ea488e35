"""Checks of what humans and operators send about evidence: submission metadata, votes,
appeals and resolutions. Every violation names its field."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from services.core.validation import Violations, check_required_text, check_text
from services.mission.evidence_model import EvidenceMeta, PairPosition
from services.mission.validation import check_coordinates

NOTES_MAX = 2000
REASONING_MIN, REASONING_MAX = 20, 2000
PAIR_ID_MAX = 64
CLOCK_SKEW = timedelta(minutes=5)
"""A phone's clock may run a little ahead; more than this is "in the future"."""


def _captured_at(value: str, now: datetime, out: Violations) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        out.add("captured_at", "must be an RFC 3339 time, e.g. 2026-12-07T10:00:00Z")
        return None
    if parsed.tzinfo is None:
        out.add("captured_at", "must carry a time zone offset (e.g. Z)")
        return None
    if parsed > now + CLOCK_SKEW:
        out.add("captured_at", "must not be in the future")
    return parsed


def valid_evidence_meta(
    *,
    latitude: float | None,
    longitude: float | None,
    captured_at: str,
    notes: str,
    pair_id: str,
    sequence: PairPosition,
    now: datetime,
) -> EvidenceMeta:
    """SubmitEvidence's metadata."""
    out = Violations()
    check_coordinates(latitude, longitude, out)
    when = _captured_at(captured_at.strip(), now, out)
    check_text(notes, out, "notes", NOTES_MAX)
    check_text(pair_id, out, "pair_id", PAIR_ID_MAX)
    if sequence is PairPosition.STANDALONE and pair_id.strip():
        out.add("pair_id", "only BEFORE and AFTER evidence belongs to a pair")
    if sequence is not PairPosition.STANDALONE and not pair_id.strip():
        out.add("pair_id", f"is required with sequence {sequence.name}")
    out.raise_if_any()
    return EvidenceMeta(
        latitude=latitude,
        longitude=longitude,
        captured_at=when,
        notes=notes.strip(),
        pair_id=pair_id.strip(),
        sequence=sequence,
    )


def valid_vote(confidence: float, reasoning: str) -> str:
    """A vote's confidence (0 to 1) and reasoning (20 to 2000 characters); the reasoning."""
    out = Violations()
    if not (math.isfinite(confidence) and 0 <= confidence <= 1):
        out.add("confidence", "must be between 0 and 1")
    check_required_text(reasoning, out, "reasoning", REASONING_MIN, REASONING_MAX)
    out.raise_if_any()
    return reasoning.strip()


def valid_long_reason(value: str, field: str) -> str:
    """An appeal's reason or an operator's reasoning: 20 to 2000 characters."""
    out = Violations()
    check_required_text(value, out, field, REASONING_MIN, REASONING_MAX)
    out.raise_if_any()
    return value.strip()
