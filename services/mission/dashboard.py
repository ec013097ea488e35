"""A human's dashboard: their account, their profile's completeness, their claims and tokens."""

from __future__ import annotations

from dataclasses import dataclass

from services.core import errors
from services.core.context import Principal
from services.mission.deps import MissionDeps
from services.mission.model import (
    LIVE_CLAIMS,
    BalanceRecord,
    ClaimRecord,
    ClaimStatus,
    HumanRecord,
)
from services.mission.profiles import SUGGESTIONS, WEIGHTS, completeness

CURRENT_CLAIMS = 5


@dataclass(frozen=True)
class Dashboard:
    """What GetDashboard answers."""

    human: HumanRecord
    has_profile: bool
    completeness: int
    suggestions: tuple[str, ...]
    active_claims: int
    completed_claims: int
    current_claims: tuple[ClaimRecord, ...]
    tokens: BalanceRecord


async def get_dashboard(deps: MissionDeps, principal: Principal) -> Dashboard:
    """The caller's dashboard."""
    human = await deps.store.get(principal.id)
    if human is None:
        raise errors.Unauthenticated("the account no longer exists", reason="TOKEN_INVALID")
    profile = await deps.profiles.get(principal.id)
    if profile is None:
        score, hints = 0, tuple(SUGGESTIONS[part] for part in WEIGHTS)
    else:
        done = completeness(profile)
        score, hints = done.score, done.suggestions
    counts = await deps.missions.claim_counts(principal.id)
    live = await deps.missions.live_claims(principal.id, limit=CURRENT_CLAIMS)
    return Dashboard(
        human=human,
        has_profile=profile is not None,
        completeness=score,
        suggestions=hints,
        active_claims=sum(counts.get(s, 0) for s in LIVE_CLAIMS),
        completed_claims=counts.get(ClaimStatus.COMPLETED, 0),
        current_claims=tuple(live),
        tokens=await deps.ledger.balance(principal.id),
    )
