"""Humans' accounts over real gRPC: registration, email codes, login and its lock."""

from __future__ import annotations

import asyncio

import grpc
import jwt
import pytest
from betterworld.mission.v1 import mission_pb2 as pb
from sqlalchemy import text

from tests.support.helpers import RunningService, unpack
from tests.support.humans import PASSWORD, Humans


@pytest.fixture
def humans(mission_service: RunningService) -> Humans:
    return Humans(mission_service)


async def _error(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call  # type: ignore[misc]
    return info.value


async def test_register_verify_and_log_in(humans: Humans) -> None:
    created = await humans.register("Ada@Example.ORG")
    assert created.user_id and created.email == "Ada@example.org"
    login = pb.LoginRequest(email="ada@example.org", password=PASSWORD)
    early = unpack(await _error(humans.auth.Login(login)))
    assert (early.code, early.reason) == (grpc.StatusCode.PERMISSION_DENIED, "EMAIL_NOT_VERIFIED")

    code = await humans.code("Ada@example.org")
    wrong = "000000" if code != "000000" else "111111"
    bad = unpack(
        await _error(
            humans.auth.VerifyEmail(pb.VerifyEmailRequest(email="ada@example.org", code=wrong))
        )
    )
    assert (bad.reason, list(bad.field_violations)) == ("VERIFICATION_CODE_INVALID", ["code"])
    tokens = await humans.auth.VerifyEmail(
        pb.VerifyEmailRequest(email="ADA@example.org", code=code)
    )
    assert tokens.user.email_verified and tokens.user.human_id == created.user_id
    assert tokens.expires_in == 900

    # Both tokens carry the documented claims; the access token lives 15 minutes, the
    # refresh token 7 days.
    access = jwt.decode(tokens.access_token, options={"verify_signature": False})
    refresh = jwt.decode(tokens.refresh_token, options={"verify_signature": False})
    assert set(access) == {"sub", "sid", "jti", "iat", "exp", "typ"}
    assert access["sub"] == created.user_id and access["sid"] == refresh["sid"]
    assert (access["exp"] - access["iat"], refresh["exp"] - refresh["iat"]) == (900, 604800)
    assert (access["typ"], refresh["typ"]) == ("access", "refresh")

    again = await humans.auth.Login(login)
    assert again.user.human_id == created.user_id
    assert (
        jwt.decode(again.access_token, options={"verify_signature": False})["sid"] != access["sid"]
    )
    # A used code does not work twice.
    used = await _error(
        humans.auth.VerifyEmail(pb.VerifyEmailRequest(email="ada@example.org", code=code))
    )
    assert unpack(used).reason == "VERIFICATION_CODE_INVALID"


async def test_every_bad_field_is_named_at_once(humans: Humans) -> None:
    error = unpack(
        await _error(
            humans.auth.RegisterHuman(
                pb.RegisterHumanRequest(
                    email="no-at-sign", password="alllowercase1", display_name="X"
                )
            )
        )
    )
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(error.field_violations) == {"email", "password", "display_name"}
    for password, complaint in [
        ("Short1", "8 to 128"),
        ("NoDigitsHere", "digit"),
        ("x" * 129, "8 to 128"),
    ]:
        weak = unpack(await _error(humans.register(f"{len(password)}@example.org", password)))
        assert complaint in weak.field_violations["password"]


async def test_an_email_is_taken_in_any_letter_case_and_under_a_race(humans: Humans) -> None:
    await humans.register("grace@example.org")
    taken = unpack(await _error(humans.register("GRACE@example.org")))
    assert (taken.code, taken.reason) == (grpc.StatusCode.ALREADY_EXISTS, "EMAIL_TAKEN")

    spellings = ["race@example.org", "RACE@example.org", "Race@EXAMPLE.org"] * 2
    results = await asyncio.gather(
        *(humans.register(email) for email in spellings), return_exceptions=True
    )
    won = [r for r in results if isinstance(r, pb.RegisterHumanResponse)]
    lost = [unpack(r).reason for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(won) == 1 and lost == ["EMAIL_TAKEN"] * 5


async def test_five_wrong_codes_void_it_and_an_expired_code_fails(humans: Humans) -> None:
    await humans.register("lin@example.org")
    code = await humans.code("lin@example.org")
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        await _error(
            humans.auth.VerifyEmail(pb.VerifyEmailRequest(email="lin@example.org", code=wrong))
        )
    voided = await _error(
        humans.auth.VerifyEmail(pb.VerifyEmailRequest(email="lin@example.org", code=code))
    )
    assert unpack(voided).reason == "VERIFICATION_CODE_INVALID"

    await humans.auth.ResendCode(pb.ResendCodeRequest(email="lin@example.org"))
    fresh = await humans.code("lin@example.org")
    async with humans.service.runtime.engine.begin() as conn:
        await conn.execute(
            text("UPDATE human_verification_codes SET expires_at = now() - interval '1 second'")
        )
    expired = await _error(
        humans.auth.VerifyEmail(pb.VerifyEmailRequest(email="lin@example.org", code=fresh))
    )
    assert unpack(expired).reason == "VERIFICATION_CODE_INVALID"


async def test_resend_answers_alike_for_any_email_and_sends_three_an_hour(humans: Humans) -> None:
    await humans.register("mae@example.org")
    first = await humans.code("mae@example.org")
    known = await humans.auth.ResendCode(pb.ResendCodeRequest(email="mae@example.org"))
    unknown = await humans.auth.ResendCode(pb.ResendCodeRequest(email="nobody@example.org"))
    assert known.message == unknown.message
    second = await humans.code("mae@example.org")
    # The older code stopped working when the new one was sent.
    if first != second:
        stale = await _error(
            humans.auth.VerifyEmail(pb.VerifyEmailRequest(email="mae@example.org", code=first))
        )
        assert unpack(stale).reason == "VERIFICATION_CODE_INVALID"
    for email in ("mae@example.org", "nobody@example.org"):
        for _ in range(2):  # one of the three was sent above
            await humans.auth.ResendCode(pb.ResendCodeRequest(email=email))
        limited = unpack(await _error(humans.auth.ResendCode(pb.ResendCodeRequest(email=email))))
        assert (limited.code, limited.reason) == (
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "VERIFICATION_SEND_LIMIT",
        )
        assert limited.retry_delay_seconds and limited.retry_delay_seconds > 60
    newest = await humans.code("mae@example.org")
    tokens = await humans.auth.VerifyEmail(
        pb.VerifyEmailRequest(email="mae@example.org", code=newest)
    )
    assert tokens.access_token


async def test_unknown_email_and_wrong_password_get_one_answer_and_five_failures_lock(
    humans: Humans,
) -> None:
    await humans.verified("kim@example.org")
    wrong = unpack(
        await _error(
            humans.auth.Login(pb.LoginRequest(email="kim@example.org", password="Wrong-Pass-1"))
        )
    )
    unknown = unpack(
        await _error(
            humans.auth.Login(pb.LoginRequest(email="who@example.org", password="Wrong-Pass-1"))
        )
    )
    assert (wrong.code, wrong.reason, wrong.message) == (
        unknown.code,
        unknown.reason,
        unknown.message,
    )
    assert (wrong.code, wrong.reason) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "CREDENTIALS_INVALID",
    )

    for email in ("kim@example.org", "who@example.org"):
        for _ in range(5 - 1):
            await _error(humans.auth.Login(pb.LoginRequest(email=email, password="Wrong-Pass-1")))
        # Locked now, even with the right password, and alike for a registered email.
        locked = unpack(
            await _error(humans.auth.Login(pb.LoginRequest(email=email.upper(), password=PASSWORD)))
        )
        assert (locked.code, locked.reason) == (
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "LOGIN_LOCKED",
        )
        assert locked.retry_delay_seconds and 800 < locked.retry_delay_seconds <= 900
    # Other emails are not affected; after the lock the count starts again.
    await humans.verified("lee@example.org")
    async with humans.service.runtime.engine.begin() as conn:
        await conn.execute(text("UPDATE login_failures SET locked_until = now() - interval '1 s'"))
    assert (
        await humans.auth.Login(pb.LoginRequest(email="kim@example.org", password=PASSWORD))
    ).access_token
