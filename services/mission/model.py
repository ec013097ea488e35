"""Mission domain records (plain data, no transport types)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


@dataclass(frozen=True)
class HumanRecord:
    """A human account as stored (the password hash never leaves the store)."""

    id: str
    email: str
    display_name: str
    email_verified: bool
    is_active: bool
    created_at: datetime


@dataclass(frozen=True)
class NewHuman:
    """A validated registration."""

    email: str
    """Normalized (the domain in lower case)."""
    password: str
    display_name: str


@dataclass(frozen=True)
class LoginState:
    """A human and the hash their password is checked against."""

    human: HumanRecord
    password_hash: str


@dataclass(frozen=True)
class Session:
    """A login's tokens, as the client receives them."""

    access_token: str
    refresh_token: str
    expires_in: int
    human: HumanRecord


@dataclass(frozen=True)
class Availability:
    """When a human can take part in missions; `timezone` is an IANA name."""

    weekdays: bool
    weekends: bool
    timezone: str


@dataclass(frozen=True)
class NewProfile:
    """A validated CreateProfile: lists normalized, free text trimmed, "" stored as None."""

    skills: tuple[str, ...]
    languages: tuple[str, ...]
    """ISO 639-1, lower case."""
    city: str | None = None
    country: str | None = None
    """ISO 3166-1 alpha-2, upper case."""
    latitude: float | None = None
    longitude: float | None = None
    service_radius_km: int = 10
    availability: Availability | None = None
    bio: str | None = None


@dataclass(frozen=True)
class ProfileChanges:
    """Validated UpdateProfile fields; None means "not sent, leave as is", and "" in a text
    field means "remove it"."""

    skills: tuple[str, ...] | None = None
    languages: tuple[str, ...] | None = None
    city: str | None = None
    country: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    clear_location: bool = False
    service_radius_km: int | None = None
    availability: Availability | None = None
    bio: str | None = None


@dataclass(frozen=True)
class ProfileRecord:
    """A human's profile as stored."""

    human_id: str
    skills: tuple[str, ...]
    languages: tuple[str, ...]
    city: str | None
    country: str | None
    latitude: float | None
    longitude: float | None
    service_radius_km: int
    availability: Availability | None
    bio: str | None
    created_at: datetime
    updated_at: datetime


class MissionStatus(StrEnum):
    """Where a mission stands (stored lower case)."""

    OPEN = "open"
    FULL = "full"
    EXPIRED = "expired"
    COMPLETED = "completed"
    ARCHIVED = "archived"


class ClaimStatus(StrEnum):
    """Where a claim stands (stored lower case)."""

    ACTIVE = "active"
    SUBMITTED = "submitted"
    COMPLETED = "completed"
    ABANDONED = "abandoned"
    EXPIRED = "expired"


APPROVED = "approved"
"""The guardrail status (stored lower case) under which a mission is public."""

LIVE_CLAIMS = (ClaimStatus.ACTIVE, ClaimStatus.SUBMITTED)
"""Claims that hold a slot of their mission."""


@dataclass(frozen=True)
class Step:
    """One step of a mission's instructions."""

    step: int
    text: str
    optional: bool = False


@dataclass(frozen=True)
class EvidenceItem:
    """One piece of proof a mission asks for (type: photo, document or video)."""

    type: str
    description: str
    required: bool = True


@dataclass(frozen=True)
class MissionFields:
    """A mission's validated, author-written fields."""

    title: str
    description: str
    instructions: tuple[Step, ...]
    evidence_required: tuple[EvidenceItem, ...]
    required_skills: tuple[str, ...]
    latitude: float | None
    longitude: float | None
    location_name: str
    location_radius_km: int
    estimated_duration_minutes: int
    difficulty: str
    token_reward: int
    bonus_for_quality: int
    max_claims: int
    expires_at: datetime


@dataclass(frozen=True)
class SolutionSource:
    """The approved solution a mission comes from, as the content service describes it (the
    text and place only where a decomposition needs them)."""

    solution_id: str
    problem_id: str
    author_agent_id: str
    domain: str
    title: str = ""
    description: str = ""
    approach: str = ""
    required_skills: tuple[str, ...] = ()
    problem_title: str = ""
    location_name: str = ""
    latitude: float | None = None
    longitude: float | None = None


@dataclass(frozen=True)
class MissionRecord:
    """A mission as stored."""

    id: str
    solution_id: str
    problem_id: str
    author_agent_id: str
    fields: MissionFields
    active_claims: int
    completed_claims: int
    status: MissionStatus
    domain: str
    guardrail_status: str
    guardrail_evaluation_id: str
    guardrail_explanation: str
    version: int
    created_at: datetime
    updated_at: datetime
    distance_m: float | None = None
    """Metres from the query point on the sphere, in nearby and distance-sorted lists."""
    distance_key: float | None = None
    """The order of those lists, exactly as the database computed it (the keyset cursor
    compares it)."""


@dataclass(frozen=True)
class MissionQuery:
    """Filters and order of a mission list (public lists see approved missions only)."""

    status: MissionStatus | None = MissionStatus.OPEN
    domain: str | None = None
    skills: tuple[str, ...] = ()
    difficulty: str | None = None
    min_reward: int = 0
    max_reward: int = 0
    max_duration_minutes: int = 0
    near: tuple[float, float, float] | None = None
    """(latitude, longitude, radius in km)."""
    sort: str = "newest"
    """newest, reward or distance."""
    author_agent_id: str | None = None
    """Only this author's missions, in any guardrail state."""


@dataclass(frozen=True)
class ClaimRecord:
    """A human's claim on a mission."""

    id: str
    mission_id: str
    human_id: str
    status: ClaimStatus
    progress_percent: int
    notes: str
    claimed_at: datetime
    deadline_at: datetime
    updated_at: datetime
    mission_title: str = ""


@dataclass(frozen=True)
class MissionDraft:
    """CreateMission's fields as sent (checked by `validation.valid_mission`); 0 and None
    mean "not sent"."""

    solution_id: str
    title: str
    description: str
    instructions: tuple[Step, ...]
    evidence_required: tuple[EvidenceItem, ...]
    required_skills: tuple[str, ...]
    latitude: float | None
    longitude: float | None
    location_name: str
    location_radius_km: int
    estimated_duration_minutes: int
    difficulty: str
    token_reward: int
    bonus_for_quality: int
    max_claims: int
    expires_at: datetime | None


@dataclass(frozen=True)
class MissionEdit:
    """UpdateMission's fields as sent; None (or an empty tuple) means "leave as is"."""

    version: int
    title: str | None = None
    description: str | None = None
    instructions: tuple[Step, ...] = ()
    evidence_required: tuple[EvidenceItem, ...] = ()
    required_skills: tuple[str, ...] = ()
    estimated_duration_minutes: int | None = None
    token_reward: int | None = None
    max_claims: int | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True)
class ClaimEdit:
    """UpdateClaim's fields as sent."""

    progress_percent: int | None = None
    notes: str | None = None
    abandon: bool = False


EARN_TYPES = ("EARN_MISSION", "EARN_PEER_REVIEW", "EARN_ORIENTATION", "EARN_GRANT")
SPEND_TYPES = ("SPEND_VOTE", "SPEND_CIRCLE", "SPEND_ANALYTICS", "SPEND_CUSTOM")


@dataclass(frozen=True)
class BalanceRecord:
    """A human's tokens."""

    balance: int
    total_earned: int
    total_spent: int


@dataclass(frozen=True)
class Movement:
    """A ledger row to write: positive amounts earn, negative ones spend."""

    human_id: str
    amount: int
    type: str
    idempotency_key: str
    reference_id: str = ""
    description: str = ""


@dataclass(frozen=True)
class TransactionRecord:
    """One ledger row."""

    id: str
    human_id: str
    amount: int
    balance_before: int
    balance_after: int
    type: str
    reference_id: str
    description: str
    created_at: datetime


@dataclass(frozen=True)
class Posted:
    """What posting a movement did: the row (new, or the earlier one of the same key) and
    the balance after it."""

    transaction: TransactionRecord
    balance: BalanceRecord
    replayed: bool


@dataclass(frozen=True)
class Drift:
    """A cached balance that is not the sum of its ledger rows."""

    human_id: str
    balance: int
    ledger_sum: int


@dataclass(frozen=True)
class LedgerCheck:
    """The reconciliation's result."""

    balances: int
    transactions: int
    tokens_outstanding: int
    drifts: tuple[Drift, ...]
    checked_at: datetime
