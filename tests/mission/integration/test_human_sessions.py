"""Humans' login sessions over real gRPC: refresh rotation, reuse detection, logout and
deactivation taking effect at once, operators' list, and the per-IP limits."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta

import grpc
import jwt
import pytest
from betterworld.mission.v1 import mission_pb2 as pb
from sqlalchemy import select

from services.core.audit import audit_log
from services.core.credentials import store as credentials
from services.core.credentials.keys import OPERATOR_KEY_PREFIX, generate_key
from services.core.credentials.tokens import TokenSigner, TokenType
from services.core.settings import Settings
from services.mission.definition import DEFINITION as MISSION
from tests.support.helpers import RunningService, bearer, start_service, unpack
from tests.support.humans import PASSWORD, Humans


@pytest.fixture
def humans(mission_service: RunningService) -> Humans:
    return Humans(mission_service)


@pytest.fixture
async def operator(mission_service: RunningService) -> tuple[tuple[str, str], ...]:
    key = generate_key(OPERATOR_KEY_PREFIX)
    await credentials.create_operator(
        mission_service.runtime.engine,
        name="ops-humans",
        digest=key.digest,
        display_prefix=key.display_prefix,
    )
    return tuple(bearer(key.plaintext))


async def _error(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call  # type: ignore[misc]
    return info.value


async def _logout(humans: Humans, access_token: str) -> pb.LogoutResponse:
    return await humans.auth.Logout(pb.LogoutRequest(), metadata=bearer(access_token))


async def test_refresh_rotates_and_a_reused_refresh_token_ends_the_session(
    humans: Humans,
) -> None:
    first = await humans.verified("ray@example.org")
    second = await humans.auth.Refresh(pb.RefreshRequest(refresh_token=first.refresh_token))
    assert second.refresh_token != first.refresh_token
    assert second.user.email == "ray@example.org"

    reused = unpack(
        await _error(humans.auth.Refresh(pb.RefreshRequest(refresh_token=first.refresh_token)))
    )
    assert (reused.code, reused.reason) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "REFRESH_TOKEN_REUSED",
    )
    # Both holders are out: the newest access token and refresh token of the session died.
    revoked = unpack(await _error(_logout(humans, second.access_token)))
    assert (revoked.code, revoked.reason) == (grpc.StatusCode.UNAUTHENTICATED, "SESSION_REVOKED")
    newest = unpack(
        await _error(humans.auth.Refresh(pb.RefreshRequest(refresh_token=second.refresh_token)))
    )
    assert newest.reason in {"SESSION_REVOKED", "REFRESH_TOKEN_REUSED"}
    # An access token is no refresh token, and a login opens a fresh session.
    wrong_type = unpack(
        await _error(humans.auth.Refresh(pb.RefreshRequest(refresh_token=second.access_token)))
    )
    assert wrong_type.reason == "TOKEN_INVALID"
    fresh = await humans.auth.Login(pb.LoginRequest(email="ray@example.org", password=PASSWORD))
    await _logout(humans, fresh.access_token)


async def test_two_refreshes_racing_with_one_token_cannot_both_win(humans: Humans) -> None:
    tokens = await humans.verified("race@example.org")
    results = await asyncio.gather(
        *(
            humans.auth.Refresh(pb.RefreshRequest(refresh_token=tokens.refresh_token))
            for _ in range(4)
        ),
        return_exceptions=True,
    )
    won = [r for r in results if isinstance(r, pb.Tokens)]
    assert len(won) <= 1
    # Whoever lost presented a token that was no longer current: the session is revoked.
    for winner in won:
        await _error(_logout(humans, winner.access_token))


async def test_logout_stops_the_access_token_at_once(humans: Humans) -> None:
    tokens = await humans.verified("lou@example.org")
    other = await humans.auth.Login(pb.LoginRequest(email="lou@example.org", password=PASSWORD))
    await _logout(humans, tokens.access_token)
    after = unpack(await _error(_logout(humans, tokens.access_token)))
    assert (after.code, after.reason) == (grpc.StatusCode.UNAUTHENTICATED, "SESSION_REVOKED")
    refresh = unpack(
        await _error(humans.auth.Refresh(pb.RefreshRequest(refresh_token=tokens.refresh_token)))
    )
    assert refresh.reason == "SESSION_REVOKED"
    # Another session of the same human is untouched.
    await _logout(humans, other.access_token)
    missing = unpack(await _error(humans.auth.Logout(pb.LogoutRequest())))
    assert (missing.code, missing.reason) == (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_MISSING")


async def test_deactivation_refuses_every_call_at_once_and_is_audited(
    humans: Humans, operator: tuple[tuple[str, str], ...]
) -> None:
    tokens = await humans.verified("dee@example.org")
    human_id = tokens.user.human_id
    before = await humans.auth.Login(pb.LoginRequest(email="dee@example.org", password=PASSWORD))
    changed = await humans.admin.DeactivateHuman(
        pb.DeactivateHumanRequest(human_id=human_id, reason="abuse report 17"), metadata=operator
    )
    assert not changed.active
    for call in (
        _logout(humans, before.access_token),
        humans.auth.Refresh(pb.RefreshRequest(refresh_token=before.refresh_token)),
        humans.auth.Login(pb.LoginRequest(email="dee@example.org", password=PASSWORD)),
    ):
        denied = unpack(await _error(call))
        assert (denied.code, denied.reason) == (
            grpc.StatusCode.PERMISSION_DENIED,
            "HUMAN_DEACTIVATED",
        )
    # Deactivating twice changes nothing; a wrong password still says only "wrong".
    await humans.admin.DeactivateHuman(
        pb.DeactivateHumanRequest(human_id=human_id), metadata=operator
    )
    wrong = unpack(
        await _error(
            humans.auth.Login(pb.LoginRequest(email="dee@example.org", password="Nope-123"))
        )
    )
    assert wrong.reason == "CREDENTIALS_INVALID"

    await humans.admin.ReactivateHuman(
        pb.ReactivateHumanRequest(human_id=human_id, reason="cleared"), metadata=operator
    )
    await _logout(humans, before.access_token)
    async with humans.service.runtime.engine.connect() as conn:
        actions = (
            await conn.execute(
                select(audit_log.c.action, audit_log.c.details)
                .where(audit_log.c.target_id == human_id)
                .order_by(audit_log.c.created_at)
            )
        ).all()
    assert [a.action for a in actions] == [
        "human.deactivate",
        "human.deactivate",
        "human.reactivate",
    ]
    assert actions[0].details == {"reason": "abuse report 17"}


async def test_operators_list_humans_and_humans_cannot(
    humans: Humans, operator: tuple[tuple[str, str], ...]
) -> None:
    tokens = await humans.verified("one@example.org")
    await humans.register("two@example.org")
    await humans.register("three@example.org")
    first = await humans.admin.ListHumans(pb.ListHumansRequest(limit=2), metadata=operator)
    assert [h.email for h in first.data] == ["three@example.org", "two@example.org"]
    assert first.meta.has_more
    rest = await humans.admin.ListHumans(
        pb.ListHumansRequest(limit=2, cursor=first.meta.next_cursor), metadata=operator
    )
    assert [h.email for h in rest.data] == ["one@example.org"] and not rest.meta.has_more
    assert rest.data[0].email_verified and not first.data[0].email_verified

    as_human = unpack(
        await _error(
            humans.admin.ListHumans(pb.ListHumansRequest(), metadata=bearer(tokens.access_token))
        )
    )
    assert as_human.code == grpc.StatusCode.PERMISSION_DENIED
    missing = unpack(
        await _error(
            humans.admin.DeactivateHuman(
                pb.DeactivateHumanRequest(human_id="not-a-uuid"), metadata=operator
            )
        )
    )
    assert (missing.code, missing.reason) == (grpc.StatusCode.NOT_FOUND, "HUMAN_NOT_FOUND")


async def test_registrations_and_logins_are_limited_per_ip(
    mission_settings: Settings, clean_state: None
) -> None:
    settings = mission_settings.model_copy(update={"rate_limit_enabled": True})
    service = await start_service(dataclasses.replace(MISSION, background=None), settings)
    try:
        humans = Humans(service)
        for n in range(3):
            await humans.register(f"ip{n}@example.org")
        fourth = await _error(humans.register("ip3@example.org"))
        error = unpack(fourth)
        assert error.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert error.retry_delay_seconds and error.retry_delay_seconds > 30
        headers = dict(fourth.trailing_metadata() or ()) | dict(fourth.initial_metadata() or ())
        assert headers.get("x-ratelimit-limit") == "3"
        # Logins have their own window (5 in 5 minutes), counted whatever the answer.
        for _ in range(5):
            await _error(humans.auth.Login(pb.LoginRequest(email="x@example.org", password="y")))
        sixth = unpack(
            await _error(humans.auth.Login(pb.LoginRequest(email="x@example.org", password="y")))
        )
        assert sixth.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert sixth.reason == "RATE_LIMITED"
    finally:
        await service.stop()


async def test_exempt_addresses_skip_the_per_ip_sign_up_limits_but_not_the_email_lock(
    mission_settings: Settings, clean_state: None
) -> None:
    settings = mission_settings.model_copy(
        update={"rate_limit_enabled": True, "rate_limit_auth_exempt_ips": ["127.0.0.1"]}
    )
    service = await start_service(dataclasses.replace(MISSION, background=None), settings)
    try:
        humans = Humans(service)
        for n in range(12):  # past the 3-per-window and the 10-a-minute auth bucket
            await humans.register(f"exempt{n}@example.org")
        await humans.verified("locked@example.org")
        for _ in range(5):
            await _error(
                humans.auth.Login(pb.LoginRequest(email="locked@example.org", password="bad"))
            )
        locked = unpack(
            await _error(
                humans.auth.Login(pb.LoginRequest(email="locked@example.org", password="bad"))
            )
        )
        assert locked.reason == "LOGIN_LOCKED"
    finally:
        await service.stop()


async def test_bad_tokens_are_unauthenticated_with_a_reason(
    humans: Humans, mission_settings: Settings
) -> None:
    tokens = await humans.verified("tok@example.org")
    signer = TokenSigner(mission_settings.jwt_secret.get_secret_value())
    claims = jwt.decode(tokens.access_token, options={"verify_signature": False})
    expired = signer.issue(
        human_id=claims["sub"],
        session_id=claims["sid"],
        type=TokenType.ACCESS,
        lifetime=timedelta(minutes=15),
        now=datetime.now(UTC) - timedelta(hours=1),
    ).token
    foreign = (
        TokenSigner("another-secret-that-is-long-enough-0123456789")
        .issue(
            human_id=claims["sub"],
            session_id=claims["sid"],
            type=TokenType.ACCESS,
            lifetime=timedelta(minutes=15),
        )
        .token
    )
    unsigned = jwt.encode({**claims}, key="", algorithm="none")
    for token, reason in (
        (tokens.refresh_token, "TOKEN_INVALID"),  # a refresh token is no access token
        (expired, "TOKEN_EXPIRED"),
        (foreign, "TOKEN_INVALID"),
        (unsigned, "TOKEN_INVALID"),
        (tokens.access_token[:-3] + "abc", "TOKEN_INVALID"),
    ):
        refused = unpack(await _error(_logout(humans, token)))
        assert (refused.code, refused.reason) == (grpc.StatusCode.UNAUTHENTICATED, reason)
    swapped = unpack(
        await _error(humans.auth.Refresh(pb.RefreshRequest(refresh_token=tokens.access_token)))
    )
    assert swapped.reason == "TOKEN_INVALID"
