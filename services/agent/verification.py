"""Email verification: 6-digit codes, stored hashed, 15 minutes, 3 sends an hour."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.agent.deps import AgentDeps
from services.agent.model import CLAIM_VERIFIED
from services.core import errors
from services.core.codes import code_digest, new_code
from services.core.context import Principal
from services.core.credentials.authenticator import invalidate_cached_keys
from services.core.logging import get_logger

CODE_TTL = timedelta(minutes=15)
SENDS_PER_HOUR = 3
MAX_FAILED_ATTEMPTS = 5
log = get_logger(__name__)


@dataclass(frozen=True)
class CodeSent:
    """Where the code went, until when it works, and how many sends are left this hour."""

    sent_to: str
    expires_at: datetime
    sends_remaining: int


def mask_email(email: str) -> str:
    """'sentinel@example.org' → 's***@example.org'."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


async def request_verification(deps: AgentDeps, principal: Principal) -> CodeSent:
    """Generates a code and queues the email; RESOURCE_EXHAUSTED after 3 sends an hour."""
    now = deps.clock()
    code = new_code()
    async with deps.store.transaction() as tx:
        agent = await tx.get(principal.id, lock=True)  # one send or check at a time
        if agent is None:
            raise errors.NotFound("agent", principal.id, reason="AGENT_NOT_FOUND")
        if agent.claim_status == CLAIM_VERIFIED:
            raise errors.FailedPrecondition(
                "the agent is verified already", reason="ALREADY_VERIFIED"
            )
        if not agent.email:
            raise errors.FailedPrecondition(
                "set an email with UpdateMe before requesting verification",
                reason="EMAIL_REQUIRED",
            )
        sent = await tx.codes_sent_since(agent.id, now - timedelta(hours=1))
        if sent >= SENDS_PER_HOUR:
            raise errors.ResourceExhausted(
                f"at most {SENDS_PER_HOUR} verification emails an hour",
                retry_after_seconds=3600,
                violations=[
                    errors.QuotaViolation("verification", f"{SENDS_PER_HOUR} sends an hour")
                ],
                reason="VERIFICATION_SEND_LIMIT",
            )
        expires_at = now + CODE_TTL
        await tx.add_code(agent.id, code_digest(principal.id, code), expires_at)
        await tx.enqueue_email(
            recipient=agent.email,
            subject="Your BetterWorld verification code",
            body=f"Your verification code is {code}. It expires in 15 minutes.",
        )
    log.info("verification_code_queued", agent_id=principal.id, to=mask_email(agent.email))
    return CodeSent(mask_email(agent.email), expires_at, SENDS_PER_HOUR - sent - 1)


async def verify_agent(deps: AgentDeps, principal: Principal, code: str) -> str:
    """Checks the code; VERIFIED on success. Returns the new claim status."""
    if len(code) != 6 or not code.isdigit():
        raise errors.InvalidArgument.one("verification_code", "must be 6 digits")
    invalid = errors.InvalidArgument.one(
        "verification_code",
        "is wrong, used or expired; request a new one",
        reason="VERIFICATION_CODE_INVALID",
    )
    async with deps.store.transaction() as tx:
        await tx.get(principal.id, lock=True)  # one send or check at a time
        current = await tx.current_code(principal.id)
        if current is None or current.expires_at <= deps.clock():
            raise invalid
        if not hmac.compare_digest(current.digest, code_digest(principal.id, code)):
            await tx.record_failed_attempt(
                current.id, void=current.failed_attempts + 1 >= MAX_FAILED_ATTEMPTS
            )
            failure = invalid
        else:
            failure = None
            await tx.consume_code(current.id)
            await tx.set_claim_status(principal.id, CLAIM_VERIFIED)
            digests = await tx.key_digests(principal.id)
    # Raised after the block so the failed attempt is committed, not rolled back.
    if failure is not None:
        raise failure
    await invalidate_cached_keys(deps.redis, digests)
    return CLAIM_VERIFIED
