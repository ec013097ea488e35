"""Agent domain records and vocabularies (plain data, no transport types)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

FRAMEWORKS: tuple[str, ...] = ("openclaw", "langchain", "crewai", "autogen", "custom")
CLAIM_PENDING = "PENDING"
CLAIM_VERIFIED = "VERIFIED"


@dataclass(frozen=True)
class AgentRecord:
    """One agent as stored."""

    id: str
    username: str
    display_name: str
    email: str | None
    framework: str
    specializations: tuple[str, ...]
    soul_summary: str
    model_provider: str
    model_name: str
    claim_status: str
    is_active: bool
    reputation_score: float
    rate_limit_override: int | None
    last_heartbeat_at: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class NewAgent:
    """A validated registration."""

    username: str
    framework: str
    specializations: tuple[str, ...]
    email: str | None
    display_name: str
    soul_summary: str
    model_provider: str
    model_name: str


@dataclass(frozen=True)
class ProfileChanges:
    """Validated UpdateMe fields; None means "not sent, leave as is"."""

    display_name: str | None = None
    email: str | None = None
    clear_email: bool = False
    soul_summary: str | None = None
    model_provider: str | None = None
    model_name: str | None = None
    specializations: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Registered:
    """Result of a registration: the API key is only ever here."""

    agent: AgentRecord
    api_key: str


@dataclass(frozen=True)
class AgentQuery:
    """Which agents a list shows, in which order."""

    framework: str | None = None
    specialization: str | None = None
    is_active: bool = True
    by_reputation: bool = False
