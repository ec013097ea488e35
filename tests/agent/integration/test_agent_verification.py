"""Email verification codes: delivery to the outbox, checking, limits, tier change."""

from __future__ import annotations

import grpc
import pytest
from betterworld.agent.v1 import agent_pb2 as pb

from tests.support.agents import register
from tests.support.helpers import RunningService, bearer, unpack
from tests.support.mail import last_code


async def _last_code(service: RunningService, recipient: str) -> str:
    return await last_code(service.runtime.engine, recipient)


async def test_code_from_the_outbox_verifies_the_agent(agent_service: RunningService) -> None:
    reg = await register(agent_service, "verify-me", email="verify@example.org")
    auth = bearer(reg.api_key)
    sent = await agent_service.agents.RequestVerification(
        pb.RequestVerificationRequest(), metadata=auth
    )
    assert sent.sent_to == "v***@example.org"
    assert sent.sends_remaining == 2
    code = await _last_code(agent_service, "verify@example.org")
    wrong = "000000" if code != "000000" else "111111"
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await agent_service.agents.VerifyAgent(
            pb.VerifyAgentRequest(verification_code=wrong), metadata=auth
        )
    assert unpack(info.value).reason == "VERIFICATION_CODE_INVALID"
    result = await agent_service.agents.VerifyAgent(
        pb.VerifyAgentRequest(verification_code=code), metadata=auth
    )
    assert result.claim_status == pb.VERIFIED
    me = await agent_service.agents.GetMe(pb.GetMeRequest(), metadata=auth)
    assert me.claim_status == pb.VERIFIED
    assert me.rate_limit_per_minute == 60
    # A used code does not work twice.
    with pytest.raises(grpc.aio.AioRpcError) as again:
        await agent_service.agents.VerifyAgent(
            pb.VerifyAgentRequest(verification_code=code), metadata=auth
        )
    assert again.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_at_most_three_sends_an_hour(agent_service: RunningService) -> None:
    reg = await register(agent_service, "spammy", email="spam@example.org")
    auth = bearer(reg.api_key)
    for _ in range(3):
        await agent_service.agents.RequestVerification(
            pb.RequestVerificationRequest(), metadata=auth
        )
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await agent_service.agents.RequestVerification(
            pb.RequestVerificationRequest(), metadata=auth
        )
    error = unpack(info.value)
    assert error.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error.reason == "VERIFICATION_SEND_LIMIT"
    assert error.retry_delay_seconds == 3600


async def test_five_wrong_guesses_void_the_code(agent_service: RunningService) -> None:
    reg = await register(agent_service, "guesser", email="guess@example.org")
    auth = bearer(reg.api_key)
    await agent_service.agents.RequestVerification(pb.RequestVerificationRequest(), metadata=auth)
    code = await _last_code(agent_service, "guess@example.org")
    wrong = [f"{(int(code) + i) % 1_000_000:06d}" for i in range(1, 6)]
    for guess in wrong:
        with pytest.raises(grpc.aio.AioRpcError):
            await agent_service.agents.VerifyAgent(
                pb.VerifyAgentRequest(verification_code=guess), metadata=auth
            )
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await agent_service.agents.VerifyAgent(
            pb.VerifyAgentRequest(verification_code=code), metadata=auth
        )
    assert unpack(info.value).reason == "VERIFICATION_CODE_INVALID"


@pytest.mark.parametrize(("email", "reason"), [("", "EMAIL_REQUIRED")])
async def test_verification_needs_an_email(
    agent_service: RunningService, email: str, reason: str
) -> None:
    reg = await register(agent_service, "no-email", email=email)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await agent_service.agents.RequestVerification(
            pb.RequestVerificationRequest(), metadata=bearer(reg.api_key)
        )
    error = unpack(info.value)
    assert error.code == grpc.StatusCode.FAILED_PRECONDITION
    assert error.reason == reason


@pytest.mark.parametrize("code", ["12345", "abcdef", "1234567", ""])
async def test_malformed_codes_name_the_field(agent_service: RunningService, code: str) -> None:
    reg = await register(agent_service, "malformed", email="m@example.org")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await agent_service.agents.VerifyAgent(
            pb.VerifyAgentRequest(verification_code=code), metadata=bearer(reg.api_key)
        )
    assert unpack(info.value).field_violations.keys() == {"verification_code"}
