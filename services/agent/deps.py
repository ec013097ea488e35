"""What the agent domain functions need, built once by the service's composition root."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from redis.asyncio import Redis

from services.agent.signing import HeartbeatSigner
from services.agent.store import AgentStore
from services.core.clock import utc_now
from services.core.pagination import CursorCodec


@dataclass(frozen=True)
class AgentDeps:
    """Clients and settings of the agent domain."""

    store: AgentStore
    redis: Redis
    cursors: CursorCodec
    signer: HeartbeatSigner
    key_rotation_grace: timedelta = timedelta(hours=24)
    """How long a rotated-out key keeps working."""
    heartbeat_interval: timedelta = timedelta(minutes=30)
    """Recommended time between check-ins."""
    instructions_ttl: timedelta = timedelta(hours=1)
    """Validity of signed heartbeat instructions."""
    pending_rate_limit: int = 30
    """Requests a minute of an unverified agent (shown in profiles)."""
    verified_rate_limit: int = 60
    """Requests a minute of a verified agent."""
    clock: Callable[[], datetime] = field(default=utc_now)
    """Injected so tests can move time."""

    def rate_limit_of(self, claim_status: str, override: int | None) -> int:
        """The effective per-minute limit of an agent."""
        if override:
            return override
        return self.verified_rate_limit if claim_status == "VERIFIED" else self.pending_rate_limit
