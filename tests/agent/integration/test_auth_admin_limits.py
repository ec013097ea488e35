"""Authentication, operator actions with audit, and rate limits over real gRPC."""

from __future__ import annotations

import grpc
import pytest
from betterworld.agent.v1 import agent_pb2 as pb
from sqlalchemy import select

from services.agent.definition import DEFINITION
from services.core.audit import audit_log
from services.core.settings import Settings
from tests.support.agents import register
from tests.support.helpers import RunningService, bearer, start_service, unpack


@pytest.mark.parametrize(
    ("metadata", "code", "reason"),
    [
        ((), grpc.StatusCode.UNAUTHENTICATED, "API_KEY_MISSING"),
        (
            (("authorization", "Basic abc"),),
            grpc.StatusCode.UNAUTHENTICATED,
            "AUTHORIZATION_MALFORMED",
        ),
        (
            (("authorization", "Bearer"),),
            grpc.StatusCode.UNAUTHENTICATED,
            "AUTHORIZATION_MALFORMED",
        ),
        (bearer("nonsense"), grpc.StatusCode.UNAUTHENTICATED, "API_KEY_INVALID"),
        (bearer("bw_agent_" + "A" * 43), grpc.StatusCode.UNAUTHENTICATED, "API_KEY_INVALID"),
    ],
)
async def test_bad_credentials_are_rejected_with_a_reason(
    agent_service: RunningService,
    metadata: tuple[tuple[str, str], ...],
    code: grpc.StatusCode,
    reason: str,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await agent_service.agents.GetMe(pb.GetMeRequest(), metadata=metadata)
    error = unpack(info.value)
    assert (error.code, error.reason) == (code, reason)


async def test_agent_keys_cannot_call_operator_rpcs(agent_service: RunningService) -> None:
    reg = await register(agent_service, "wannabe-op")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await agent_service.admin.DeactivateAgent(
            pb.DeactivateAgentRequest(agent_id=reg.agent_id), metadata=bearer(reg.api_key)
        )
    assert unpack(info.value).code == grpc.StatusCode.PERMISSION_DENIED


async def test_deactivation_locks_the_agent_out_at_once_and_is_audited(
    agent_service: RunningService, operator_key: str
) -> None:
    reg = await register(agent_service, "troublemaker")
    auth = bearer(reg.api_key)
    await agent_service.agents.GetMe(pb.GetMeRequest(), metadata=auth)  # warms the auth cache
    result = await agent_service.admin.DeactivateAgent(
        pb.DeactivateAgentRequest(agent_id=reg.agent_id, reason="spam"),
        metadata=bearer(operator_key),
    )
    assert result.is_active is False
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await agent_service.agents.GetMe(pb.GetMeRequest(), metadata=auth)
    error = unpack(info.value)
    assert (error.code, error.reason) == (grpc.StatusCode.PERMISSION_DENIED, "AGENT_DEACTIVATED")
    with pytest.raises(grpc.aio.AioRpcError) as hidden:
        await agent_service.agents.GetAgent(pb.GetAgentRequest(agent_id=reg.agent_id))
    assert hidden.value.code() == grpc.StatusCode.NOT_FOUND

    await agent_service.admin.ReactivateAgent(
        pb.ReactivateAgentRequest(agent_id=reg.agent_id, reason="appeal accepted"),
        metadata=bearer(operator_key),
    )
    await agent_service.agents.GetMe(pb.GetMeRequest(), metadata=auth)
    async with agent_service.runtime.engine.connect() as conn:
        rows = (await conn.execute(select(audit_log).order_by(audit_log.c.created_at))).all()
    assert [(r.action, r.operator_name, r.details["reason"]) for r in rows] == [
        ("agent.deactivate", "ops-test", "spam"),
        ("agent.reactivate", "ops-test", "appeal accepted"),
    ]
    assert all(r.request_id for r in rows)


async def test_operator_sets_verification_and_rate_limit(
    agent_service: RunningService, operator_key: str
) -> None:
    reg = await register(agent_service, "tiered")
    ops = bearer(operator_key)
    verified = await agent_service.admin.SetVerificationStatus(
        pb.SetVerificationStatusRequest(agent_id=reg.agent_id, claim_status=pb.VERIFIED),
        metadata=ops,
    )
    assert verified.rate_limit_per_minute == 60
    limited = await agent_service.admin.SetRateLimit(
        pb.SetRateLimitRequest(agent_id=reg.agent_id, limit_per_minute=500), metadata=ops
    )
    assert limited.rate_limit_per_minute == 500
    call = agent_service.agents.GetMe(pb.GetMeRequest(), metadata=bearer(reg.api_key))
    await call
    assert dict(await call.initial_metadata())["x-ratelimit-limit"] == "500"
    cleared = await agent_service.admin.SetRateLimit(
        pb.SetRateLimitRequest(agent_id=reg.agent_id), metadata=ops
    )
    assert cleared.rate_limit_per_minute == 60
    for bad in (0, 1001):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await agent_service.admin.SetRateLimit(
                pb.SetRateLimitRequest(agent_id=reg.agent_id, limit_per_minute=bad), metadata=ops
            )
        assert unpack(info.value).field_violations.keys() == {"limit_per_minute"}


async def test_agent_limit_overflow_is_resource_exhausted_with_retry_info(
    agent_service: RunningService,
) -> None:
    reg = await register(agent_service, "chatty")
    auth = bearer(reg.api_key)
    for remaining in reversed(range(30)):
        call = agent_service.agents.GetMe(pb.GetMeRequest(), metadata=auth)
        await call
        headers = dict(await call.initial_metadata())
        assert headers["x-ratelimit-remaining"] == str(remaining)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await agent_service.agents.GetMe(pb.GetMeRequest(), metadata=auth)
    error = unpack(info.value)
    assert error.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error.reason == "RATE_LIMITED"
    assert error.retry_delay_seconds is not None and 0 < error.retry_delay_seconds <= 2
    assert error.trailing["x-ratelimit-remaining"] == "0"
    assert int(error.trailing["retry-after"]) >= 1


async def test_registration_is_limited_per_client_ip(agent_service: RunningService) -> None:
    for i in range(10):
        await register(agent_service, f"burst-{i}")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await register(agent_service, "burst-10")
    assert unpack(info.value).code == grpc.StatusCode.RESOURCE_EXHAUSTED
    # Another client IP (as Envoy reports it) has its own bucket.
    other = await agent_service.agents.RegisterAgent(
        pb.RegisterAgentRequest(username="burst-other", framework=pb.CUSTOM, specializations=[1]),
        metadata=(("x-bw-client-ip", "203.0.113.9"),),
    )
    assert other.username == "burst-other"


async def test_redis_outage_fails_open_for_limits_and_auth(
    settings: Settings, clean_state: None
) -> None:
    """With Redis unreachable, requests still succeed: limits fail open, auth reads PostgreSQL."""
    broken = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    service = await start_service(DEFINITION, broken)
    try:
        reg = await register(service, "no-redis")
        me = await service.agents.GetMe(pb.GetMeRequest(), metadata=bearer(reg.api_key))
        assert me.username == "no-redis"
    finally:
        await service.stop()


async def test_only_operators_list_deactivated_agents(
    agent_service: RunningService, operator_key: str
) -> None:
    reg = await register(agent_service, "gone-agent")
    await agent_service.admin.DeactivateAgent(
        pb.DeactivateAgentRequest(agent_id=reg.agent_id), metadata=bearer(operator_key)
    )
    request = pb.ListAgentsRequest(is_active=False)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await agent_service.agents.ListAgents(request)
    assert unpack(info.value).reason == "OPERATOR_REQUIRED"
    page = await agent_service.agents.ListAgents(request, metadata=bearer(operator_key))
    assert [a.username for a in page.data] == ["gone-agent"]
    public = await agent_service.agents.ListAgents(pb.ListAgentsRequest())
    assert public.data == []


async def test_refused_keys_count_against_the_ip_like_anonymous_requests(
    settings: Settings, clean_state: None
) -> None:
    limited = settings.model_copy(update={"rate_limit_public_per_ip": 3})
    service = await start_service(DEFINITION, limited)
    try:
        reg = await register(service, "legit")
        guess = bearer("bw_agent_" + "B" * 43)
        for _ in range(3):
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await service.agents.GetMe(pb.GetMeRequest(), metadata=guess)
            assert unpack(info.value).reason == "API_KEY_INVALID"
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await service.agents.GetMe(pb.GetMeRequest(), metadata=guess)
        error = unpack(info.value)
        assert (error.code, error.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "RATE_LIMITED")
        assert int(error.trailing["retry-after"]) >= 1
        # A valid key from the same address is the agent's own business.
        me = await service.agents.GetMe(pb.GetMeRequest(), metadata=bearer(reg.api_key))
        assert me.username == "legit"
    finally:
        await service.stop()
