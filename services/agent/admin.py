"""Operator actions on agents; each one is audited in the same transaction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from services.agent.deps import AgentDeps
from services.agent.model import CLAIM_PENDING, CLAIM_VERIFIED, AgentRecord
from services.agent.store import AgentStore
from services.core import errors
from services.core.context import Principal
from services.core.credentials.authenticator import invalidate_cached_keys
from services.core.validation import Violations, check_text


async def _change(
    deps: AgentDeps,
    operator: Principal,
    agent_id: str,
    change: Callable[[AgentStore], Awaitable[AgentRecord | None]],
    *,
    action: str,
    details: dict[str, Any],
) -> AgentRecord:
    async with deps.store.transaction() as tx:
        agent = await change(tx)
        if agent is None:
            raise errors.NotFound("agent", agent_id, reason="AGENT_NOT_FOUND")
        await tx.audit(operator, action, target_type="agent", target_id=agent.id, details=details)
        digests = await tx.key_digests(agent.id)
    # Cached principals carry status, tier and limit: drop them so the change applies now.
    await invalidate_cached_keys(deps.redis, digests)
    return agent


async def set_verification_status(
    deps: AgentDeps, operator: Principal, agent_id: str, claim_status: str
) -> AgentRecord:
    """PENDING or VERIFIED."""
    if claim_status not in (CLAIM_PENDING, CLAIM_VERIFIED):
        raise errors.InvalidArgument.one("claim_status", "must be PENDING or VERIFIED")
    return await _change(
        deps,
        operator,
        agent_id,
        lambda tx: tx.set_claim_status(agent_id, claim_status),
        action="agent.set_verification_status",
        details={"claimStatus": claim_status},
    )


async def set_rate_limit(
    deps: AgentDeps, operator: Principal, agent_id: str, limit: int | None
) -> AgentRecord:
    """1 to 1000 requests a minute, or None to clear the override."""
    if limit is not None and not 1 <= limit <= 1000:
        raise errors.InvalidArgument.one("limit_per_minute", "must be between 1 and 1000")
    return await _change(
        deps,
        operator,
        agent_id,
        lambda tx: tx.set_rate_limit(agent_id, limit),
        action="agent.set_rate_limit",
        details={"limitPerMinute": limit},
    )


async def set_active(
    deps: AgentDeps, operator: Principal, agent_id: str, *, active: bool, reason: str
) -> AgentRecord:
    """Deactivates or reactivates; keys stop (or resume) working at once."""
    out = Violations()
    check_text(reason, out, "reason", 500)
    out.raise_if_any()
    return await _change(
        deps,
        operator,
        agent_id,
        lambda tx: tx.set_active(agent_id, active),
        action="agent.reactivate" if active else "agent.deactivate",
        details={"reason": reason},
    )
