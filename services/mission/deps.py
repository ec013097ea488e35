"""What the mission domain functions need, built once by the service's composition root."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from redis.asyncio import Redis

from services.core.clock import utc_now
from services.core.credentials.tokens import TokenSigner
from services.core.pagination import CursorCodec
from services.core.queues import EvaluationQueue
from services.mission.decomposition import Decomposer
from services.mission.files import FileStore
from services.mission.ledger_store import LedgerStore
from services.mission.mission_store import MissionStore
from services.mission.passwords import Passwords
from services.mission.profile_store import ProfileStore
from services.mission.solutions import SolutionLookup
from services.mission.store import HumanStore


@dataclass(frozen=True)
class MissionDeps:
    """Clients and settings of the mission domain."""

    store: HumanStore
    profiles: ProfileStore
    missions: MissionStore
    ledger: LedgerStore
    files: FileStore
    """Evidence files (local disk or S3)."""
    solutions: SolutionLookup
    evaluations: EvaluationQueue
    decomposer: Decomposer
    """Claude with a key, else the offline decomposition."""
    """The guardrail's queue: every new or edited mission is evaluated."""
    redis: Redis
    cursors: CursorCodec
    tokens: TokenSigner
    passwords: Passwords
    access_lifetime: timedelta = timedelta(minutes=15)
    refresh_lifetime: timedelta = timedelta(days=7)
    claim_deadline: timedelta = timedelta(days=7)
    clock: Callable[[], datetime] = field(default=utc_now)
    """Injected so tests can move time."""
