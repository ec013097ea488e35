"""Humans' accounts and logins: register, confirm the email, log in, refresh, log out."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import datetime, timedelta

from services.core import errors, quota
from services.core.codes import code_digest, new_code
from services.core.context import Principal
from services.core.credentials import sessions
from services.core.credentials.sessions import Rotation
from services.core.credentials.tokens import Claims, TokenType
from services.core.logging import get_logger
from services.mission.deps import MissionDeps
from services.mission.model import HumanRecord, Session
from services.mission.store import EmailTaken, HumanStore
from services.mission.validation import (
    valid_email,
    valid_login,
    valid_registration,
    valid_verification,
)

log = get_logger(__name__)
CODE_TTL = timedelta(minutes=15)
SENDS_PER_HOUR = 3
SEND_WINDOW_SECONDS = 3600
MAX_FAILED_CODES = 5
MAX_FAILED_LOGINS = 5
LOCK_FOR = timedelta(minutes=15)
REGISTERED = "Account created. We sent a 6-digit code to your email; it expires in 15 minutes."
CODE_SENT = "If that email has an account waiting for verification, a new code is on its way."


def _email_key(email: str) -> str:
    # Rate-limit buckets name the email only by a digest: Valkey keys are not a user list.
    return hashlib.sha256(email.lower().encode()).hexdigest()[:32]


def _invalid_code() -> errors.InvalidArgument:
    return errors.InvalidArgument.one(
        "code", "is wrong, used or expired; request a new one", reason="VERIFICATION_CODE_INVALID"
    )


def _deactivated() -> errors.PermissionDenied:
    return errors.PermissionDenied("this account is deactivated", reason="HUMAN_DEACTIVATED")


async def _send_code(store: HumanStore, human: HumanRecord, deps: MissionDeps) -> None:
    """A new code for the human and its email in the outbox, in the store's transaction."""
    code = new_code()
    await store.add_code(human.id, code_digest(human.id, code), deps.clock() + CODE_TTL)
    await store.enqueue_email(
        recipient=human.email,
        subject="Your BetterWorld verification code",
        body=f"Your verification code is {code}. It expires in 15 minutes.",
    )


def _issue(
    deps: MissionDeps, human: HumanRecord, session_id: str, refresh_jti: str | None = None
) -> tuple[Session, Claims]:
    """An access and a refresh token of the session; returns the refresh token's claims."""
    now = deps.clock()
    access = deps.tokens.issue(
        human_id=human.id,
        session_id=session_id,
        type=TokenType.ACCESS,
        lifetime=deps.access_lifetime,
        now=now,
    )
    refresh = deps.tokens.issue(
        human_id=human.id,
        session_id=session_id,
        type=TokenType.REFRESH,
        lifetime=deps.refresh_lifetime,
        token_id=refresh_jti,
        now=now,
    )
    seconds = int(deps.access_lifetime.total_seconds())
    return Session(access.token, refresh.token, seconds, human), refresh.claims


async def _open_session(store: HumanStore, deps: MissionDeps, human_id: str) -> Session:
    """A new login session for an active human (their row locked, so a deactivation running at
    the same time either sees this session or is seen by this check)."""
    human = await store.get(human_id, lock=True)
    if human is None:
        raise errors.Unauthenticated("the account no longer exists", reason="TOKEN_INVALID")
    if not human.is_active:
        raise _deactivated()
    session_id = str(uuid.uuid4())
    session, refresh = _issue(deps, human, session_id)
    await store.start_session(
        session_id=session_id,
        human_id=human.id,
        refresh_jti=refresh.token_id,
        expires_at=refresh.expires_at,
    )
    return session


async def register(
    deps: MissionDeps, *, email: str, password: str, display_name: str
) -> HumanRecord:
    """Creates the account and queues its verification code, together."""
    new = valid_registration(email, password, display_name)
    password_hash = await deps.passwords.hash(new.password)
    try:
        async with deps.store.transaction() as tx:
            human = await tx.insert(new, password_hash=password_hash)
            await _send_code(tx, human, deps)
    except EmailTaken:
        raise errors.AlreadyExists(
            "an account with this email exists", reason="EMAIL_TAKEN"
        ) from None
    log.info("human_registered", human_id=human.id)
    return human


async def verify_email(deps: MissionDeps, *, email: str, code: str) -> Session:
    """Confirms the email with its newest code and opens a session. Five wrong codes void it."""
    normalized = valid_verification(email, code)
    failure: errors.DomainError | None = None
    async with deps.store.transaction() as tx:
        state = await tx.login_state(normalized, lock=True)  # one check at a time per human
        current = await tx.current_code(state.human.id) if state else None
        if state is None or current is None or current.expires_at <= deps.clock():
            raise _invalid_code()
        if not hmac.compare_digest(current.digest, code_digest(state.human.id, code)):
            await tx.record_failed_code(
                current.id, void=current.failed_attempts + 1 >= MAX_FAILED_CODES
            )
            failure = _invalid_code()
        else:
            await tx.consume_code(current.id)
            await tx.mark_verified(state.human.id)
            session = await _open_session(tx, deps, state.human.id)
    # Raised after the block so the failed attempt is committed, not rolled back.
    if failure is not None:
        raise failure
    log.info("human_email_verified", human_id=session.human.id)
    return session


async def resend_code(deps: MissionDeps, *, email: str) -> str:
    """Sends a new code when the email belongs to an unverified account; the same answer (and
    the same limit: 3 an hour per email) whether or not it does."""
    normalized = valid_email(email)
    wait = await _spend_send(deps, normalized)
    if wait is not None:
        raise errors.ResourceExhausted(
            f"at most {SENDS_PER_HOUR} codes an hour for one email",
            retry_after_seconds=wait,
            violations=[errors.QuotaViolation("verification", f"{SENDS_PER_HOUR} sends an hour")],
            reason="VERIFICATION_SEND_LIMIT",
        )
    async with deps.store.transaction() as tx:
        state = await tx.login_state(normalized, lock=True)
        if state is not None and not state.human.email_verified and state.human.is_active:
            await _send_code(tx, state.human, deps)
    return CODE_SENT


async def _spend_send(deps: MissionDeps, email: str) -> float | None:
    """Counts a resend for the email, registered or not; the seconds to wait when spent."""
    return await quota.spend(
        deps.redis,
        f"bw:resend:{_email_key(email)}",
        limit=SENDS_PER_HOUR,
        window_seconds=SEND_WINDOW_SECONDS,
    )


async def login(deps: MissionDeps, *, email: str, password: str) -> Session:
    """Checks the password (in constant time, also for unknown emails) and opens a session.

    Failures are counted per email whether or not it has an account, so neither the answer, its
    timing nor the lock after five failures tells which emails are registered. The state of
    the account (unverified, deactivated) is told only to whoever knows the password.
    """
    normalized = valid_login(email, password)
    locked_until = await deps.store.login_locked_until(normalized)
    if locked_until is not None:
        raise _locked(deps, locked_until)
    state = await deps.store.login_state(normalized)
    if not await deps.passwords.check(state.password_hash if state else None, password):
        lock = await deps.store.record_login_failure(
            normalized, lock_after=MAX_FAILED_LOGINS, lock_for=LOCK_FOR
        )
        if lock is not None:
            log.warning("login_locked", email_key=_email_key(normalized))
        raise errors.Unauthenticated(
            "the email or the password is wrong", reason="CREDENTIALS_INVALID"
        )
    assert state is not None  # the decoy hash never matches
    await deps.store.clear_login_failures(normalized)
    if not state.human.email_verified:
        raise errors.PermissionDenied(
            "confirm your email first (VerifyEmail; ResendCode sends a new code)",
            reason="EMAIL_NOT_VERIFIED",
        )
    async with deps.store.transaction() as tx:
        return await _open_session(tx, deps, state.human.id)


def _locked(deps: MissionDeps, until: datetime) -> errors.ResourceExhausted:
    wait = max(1.0, (until - deps.clock()).total_seconds())
    return errors.ResourceExhausted(
        "too many failed logins for this email; try again later",
        retry_after_seconds=wait,
        violations=[errors.QuotaViolation("login", f"{MAX_FAILED_LOGINS} failures in a row")],
        reason="LOGIN_LOCKED",
    )


async def refresh(deps: MissionDeps, *, refresh_token: str) -> Session:
    """A new pair for the refresh token of the current pair; a rotated-out one revokes the
    session (its owner and whoever copied it are both logged out)."""
    if not refresh_token:
        raise errors.InvalidArgument.one("refresh_token", "is required")
    claims = deps.tokens.verify(refresh_token, TokenType.REFRESH)
    human = await deps.store.get(claims.human_id)
    if human is None:
        raise errors.Unauthenticated("the account no longer exists", reason="TOKEN_INVALID")
    session, renewed = _issue(deps, human, claims.session_id, refresh_jti=str(uuid.uuid4()))
    outcome = await deps.store.rotate_session(
        session_id=claims.session_id,
        presented_jti=claims.token_id,
        new_jti=renewed.token_id,
        expires_at=renewed.expires_at,
    )
    if outcome is Rotation.REUSED:
        await sessions.forget(deps.redis, [claims.session_id])
        log.warning("refresh_token_reused", human_id=claims.human_id)
        raise errors.Unauthenticated(
            "this refresh token was already used; the session is revoked, log in again",
            reason="REFRESH_TOKEN_REUSED",
        )
    if outcome is Rotation.OWNER_INACTIVE:
        raise _deactivated()
    if outcome is Rotation.REVOKED:
        raise errors.Unauthenticated(
            "the session has ended; log in again", reason="SESSION_REVOKED"
        )
    return session


async def logout(deps: MissionDeps, principal: Principal) -> None:
    """Revokes the caller's session: its access and refresh tokens stop working at once."""
    assert principal.session_id is not None, "the HUMAN policy admits only humans"
    await deps.store.end_session(principal.session_id, reason="logout")
    await sessions.forget(deps.redis, [principal.session_id])
