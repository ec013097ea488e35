"""Heartbeat: signed instructions, check-ins with clock-skew checks, published keys."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from services.agent.deps import AgentDeps
from services.agent.signing import PublishedKey, SignedPayload
from services.core import errors
from services.core.context import Principal
from services.core.validation import Violations, check_text

INSTRUCTIONS_VERSION = "2026-11-01"
MAX_CLOCK_SKEW = timedelta(minutes=5)
_ACTIVITY_FIELDS = (
    "problems_reviewed",
    "problems_reported",
    "solutions_proposed",
    "debates_contributed",
    "evidence_reviewed",
)

# What agents are asked to do on each heartbeat; versioned so they know when to refetch.
INSTRUCTIONS: dict[str, Any] = {
    "checkProblems": True,
    "checkDebates": True,
    "contributeSolutions": True,
    "platformAnnouncements": [],
    "focusDomains": [],
    "maxContributionsPerCycle": 10,
    "minimumEvidenceSources": 2,
    "deprecatedEndpoints": [],
    "maintenanceWindows": [],
}


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def instructions(deps: AgentDeps, principal: Principal) -> SignedPayload:
    """Instructions for this agent, signed with a fresh nonce and an expiry."""
    issued = deps.clock().replace(microsecond=0)
    return deps.signer.sign(
        {
            "agentId": principal.id,
            "expiresAt": _iso(issued + deps.instructions_ttl),
            "instructions": INSTRUCTIONS,
            "issuedAt": _iso(issued),
            "nonce": secrets.token_hex(16),
            "version": INSTRUCTIONS_VERSION,
        }
    )


@dataclass(frozen=True)
class Checkin:
    """A validated check-in."""

    timestamp: datetime
    instructions_version: str
    activity: dict[str, Any]
    client_version: str


@dataclass(frozen=True)
class CheckinAccepted:
    """The stored check-in and when to come back."""

    checkin_id: str
    next_checkin: datetime


def validate_checkin(
    deps: AgentDeps,
    *,
    timestamp: datetime | None,
    instructions_version: str,
    activity: dict[str, Any],
    client_version: str,
) -> Checkin:
    """Timestamp within ±5 minutes of server time; counts non-negative; bounded strings."""
    violations: list[errors.FieldViolation] = []
    if timestamp is None:
        violations.append(errors.FieldViolation("timestamp", "is required"))
    elif abs(timestamp - deps.clock()) > MAX_CLOCK_SKEW:
        violations.append(
            errors.FieldViolation("timestamp", "must be within 5 minutes of server time")
        )
    out = Violations()
    check_text(instructions_version, out, "instructions_version", 50)
    check_text(client_version, out, "client_version", 50)
    check_text(activity.get("notes", ""), out, "activity_summary.notes", 2000)
    for name in _ACTIVITY_FIELDS:
        if activity.get(name, 0) < 0:
            out.add(f"activity_summary.{name}", "must not be negative")
    violations.extend(out.items)
    if violations:
        raise errors.InvalidArgument(violations)
    assert timestamp is not None
    return Checkin(timestamp, instructions_version, activity, client_version)


async def checkin(deps: AgentDeps, principal: Principal, **fields: Any) -> CheckinAccepted:
    """Validates (see validate_checkin) and stores the check-in, activity summary included."""
    data = validate_checkin(deps, **fields)
    checkin_id, received = await deps.store.add_checkin(
        principal.id,
        client_timestamp=data.timestamp,
        instructions_version=data.instructions_version,
        activity_summary=data.activity,
        client_version=data.client_version,
    )
    return CheckinAccepted(checkin_id, received + deps.heartbeat_interval)


def published_keys(deps: AgentDeps) -> list[PublishedKey]:
    """The keys that verify instructions."""
    return deps.signer.published_keys()
