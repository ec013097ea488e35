"""What the mission domain functions need, built once by the service's composition root."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from redis.asyncio import Redis

from services.core.clock import utc_now
from services.core.credentials.tokens import TokenSigner
from services.core.pagination import CursorCodec
from services.core.queues import EvaluationQueue
from services.mission.decomposition import Decomposer
from services.mission.evidence_store import EvidenceStore
from services.mission.files import FileStore
from services.mission.ledger_store import LedgerStore
from services.mission.mission_store import MissionStore
from services.mission.passwords import Passwords
from services.mission.profile_store import ProfileStore
from services.mission.solutions import SolutionLookup
from services.mission.store import HumanStore
from services.mission.vision import EvidenceAssessor


@dataclass(frozen=True)
class MissionDeps:
    """Clients and settings of the mission domain."""

    store: HumanStore
    profiles: ProfileStore
    missions: MissionStore
    ledger: LedgerStore
    evidence: EvidenceStore
    files: FileStore
    """Evidence files (local disk or S3)."""
    solutions: SolutionLookup
    evaluations: EvaluationQueue
    """The guardrail's queue: every new or edited mission is evaluated."""
    decomposer: Decomposer
    """Claude with a key, else the offline decomposition."""
    redis: Redis
    cursors: CursorCodec
    tokens: TokenSigner
    passwords: Passwords
    access_lifetime: timedelta = timedelta(minutes=15)
    refresh_lifetime: timedelta = timedelta(days=7)
    claim_deadline: timedelta = timedelta(days=7)
    assessor: EvidenceAssessor | None = None
    """The automatic evidence check (Claude's vision, with a key); None: peers review all."""
    image_slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(2))
    """Images decoded at once: each may take tens of MB while it is cleaned."""
    clock: Callable[[], datetime] = field(default=utc_now)
    """Injected so tests can move time."""
