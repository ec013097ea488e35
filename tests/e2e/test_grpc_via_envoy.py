"""gRPC clients on Envoy's port (h2c): stubs, metadata, health, reflection, rich errors."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from betterworld.agent.v1 import agent_pb2 as pb
from betterworld.agent.v1 import agent_pb2_grpc as pb_grpc
from betterworld.common.v1 import common_pb2
from google.protobuf import descriptor_pool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from tests.support.e2e_http import DOMAIN, assert_no_leak, unique
from tests.support.e2e_stack import PENDING_AGENT_LIMIT, Stack
from tests.support.helpers import bearer, unpack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

PUBLIC_SERVICES = {
    "betterworld.agent.v1.AgentService",
    "betterworld.agent.v1.HeartbeatService",
    "betterworld.agent.v1.AgentAdminService",
}


@pytest.fixture
async def channel(e2e_stack: Stack) -> AsyncIterator[grpc.aio.Channel]:
    e2e_stack.check_alive()
    async with grpc.aio.insecure_channel(e2e_stack.grpc_target) as chan:
        yield chan


def registration(prefix: str = "grpc") -> pb.RegisterAgentRequest:
    return pb.RegisterAgentRequest(
        username=unique(prefix),
        framework=pb.CREWAI,
        specializations=[common_pb2.DISASTER_RESPONSE, common_pb2.ELDER_CARE],
        email="grpc-agent@example.org",
    )


async def test_register_and_get_me_through_envoy(channel: grpc.aio.Channel) -> None:
    agents = pb_grpc.AgentServiceStub(channel)
    request = registration()
    call = agents.RegisterAgent(request, metadata=(("x-request-id", "grpc-e2e-1"),))
    registered = await call
    # The 201 marker is for JSON clients only: a gRPC client sees a plain OK.
    assert await call.code() == grpc.StatusCode.OK
    initial = dict(await call.initial_metadata())
    assert "x-http-status" not in initial
    assert initial["x-request-id"] == "grpc-e2e-1"
    assert {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"} <= set(initial)
    assert registered.username == request.username
    assert registered.api_key.startswith("bw_agent_")

    call = agents.GetMe(pb.GetMeRequest(), metadata=bearer(registered.api_key))
    me = await call
    assert me.agent_id == registered.agent_id
    assert me.username == request.username
    assert me.framework == pb.CREWAI
    assert list(me.specializations) == [common_pb2.DISASTER_RESPONSE, common_pb2.ELDER_CARE]
    assert me.email == "grpc-agent@example.org"
    initial = dict(await call.initial_metadata())
    assert initial["x-ratelimit-limit"] == str(PENDING_AGENT_LIMIT)
    assert 0 <= int(initial["x-ratelimit-remaining"]) < PENDING_AGENT_LIMIT
    assert int(initial["x-ratelimit-reset"]) >= 0
    assert initial["x-request-id"]

    profile = await agents.GetAgent(pb.GetAgentRequest(agent_id=registered.agent_id))
    assert profile.username == request.username


async def test_rich_error_details_reach_grpc_clients(channel: grpc.aio.Channel) -> None:
    agents = pb_grpc.AgentServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await agents.RegisterAgent(
            pb.RegisterAgentRequest(username="Not Valid", framework=pb.LANGCHAIN)
        )
    error = unpack(info.value)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.reason, error.domain) == ("INVALID_ARGUMENT", DOMAIN)
    assert set(error.field_violations) == {"username", "specializations"}
    assert_no_leak(error.message)

    with pytest.raises(grpc.aio.AioRpcError) as info:
        await agents.GetMe(pb.GetMeRequest())
    error = unpack(info.value)
    assert (error.code, error.reason) == (grpc.StatusCode.UNAUTHENTICATED, "API_KEY_MISSING")

    missing = "00000000-0000-4000-8000-000000000000"
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await agents.GetAgent(pb.GetAgentRequest(agent_id=missing))
    error = unpack(info.value)
    assert (error.code, error.reason) == (grpc.StatusCode.NOT_FOUND, "AGENT_NOT_FOUND")
    assert error.resource == ("agent", missing)

    request = registration("dup")
    await agents.RegisterAgent(request)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await agents.RegisterAgent(request)
    error = unpack(info.value)
    assert (error.code, error.reason) == (grpc.StatusCode.ALREADY_EXISTS, "USERNAME_TAKEN")


@pytest.mark.parametrize("agent_id", ["a" * 5000, "é" * 3000])
async def test_a_long_agent_id_is_a_clean_not_found(
    channel: grpc.aio.Channel, agent_id: str
) -> None:
    agents = pb_grpc.AgentServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await agents.GetAgent(pb.GetAgentRequest(agent_id=agent_id))
    assert info.value.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT), (
        info.value.details()
    )
    assert unpack(info.value).domain == DOMAIN


async def test_undecodable_request_bytes_are_invalid_argument(channel: grpc.aio.Channel) -> None:
    raw = channel.unary_unary(
        "/betterworld.agent.v1.AgentService/RegisterAgent",
        request_serializer=None,
        response_deserializer=None,
    )
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await raw(b"\xff\xff\xff\xff\x0f")
    error = unpack(info.value)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.domain == DOMAIN


async def test_unrouted_grpc_service_is_unimplemented(channel: grpc.aio.Channel) -> None:
    raw = channel.unary_unary(
        "/betterworld.internal.v1.Secret/Steal",
        request_serializer=None,
        response_deserializer=None,
    )
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await raw(b"")
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_health_check_through_envoy(channel: grpc.aio.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", *sorted(PUBLIC_SERVICES)):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING, service
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_server_reflection_through_envoy_lists_and_describes_services(e2e_stack: Stack) -> None:
    with grpc.insecure_channel(e2e_stack.grpc_target) as chan:
        database = ProtoReflectionDescriptorDatabase(chan)
        services = set(database.get_services())
        assert services >= PUBLIC_SERVICES | {
            "grpc.health.v1.Health",
            "betterworld.common.v1.ReadinessService",
        }
        assert not any("internal" in s.lower() for s in services)
        pool = descriptor_pool.DescriptorPool(database)
        agent_service = pool.FindServiceByName("betterworld.agent.v1.AgentService")
        assert {m.name for m in agent_service.methods} >= {
            "RegisterAgent",
            "GetMe",
            "UpdateMe",
            "GetAgent",
            "ListAgents",
            "RotateApiKey",
        }
        register = pool.FindMessageTypeByName("betterworld.agent.v1.RegisterAgentRequest")
        assert "username" in register.fields_by_name
