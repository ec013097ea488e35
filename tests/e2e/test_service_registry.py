"""One registry line is all a new service needs: a test-only service, registered once.

EchoService exists only under tests/support: its proto, its servicer and a definition like any
service's. Added to the registry and to nothing else, it is served with the shared lifecycle,
reports health, is listed by reflection, gets port settings, and the rendered Envoy config
routes gRPC and JSON to it and health-checks it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from sqlalchemy.ext.asyncio import create_async_engine

from services.core.credentials import sessions
from services.core.credentials.tokens import TokenType
from services.core.runtime import token_signer
from services.core.settings import Settings
from services.registry import REGISTRY
from tests.support import echo
from tests.support.e2e_http import json_error
from tests.support.e2e_stack import EnvoyProcess
from tests.support.helpers import RunningService, start_service
from tooling.edge.envoy_config import local_spec

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> echo.Echo:
    return echo.build(tmp_path_factory.mktemp("echo"))


@pytest.fixture
async def echo_service(
    compiled: echo.Echo, settings: Settings, clean_state: None
) -> AsyncIterator[RunningService]:
    service = await start_service(compiled.definition, settings)
    try:
        yield service
    finally:
        await service.stop()


def _reflected_services(target: str) -> set[str]:
    with grpc.insecure_channel(target) as channel:
        return set(ProtoReflectionDescriptorDatabase(channel).get_services())


async def _human_token(settings: Settings) -> tuple[str, str, str]:
    """A logged-in human: (human id, session id, access token)."""
    human, session = str(uuid.uuid4()), str(uuid.uuid4())
    engine = create_async_engine(settings.database_url)
    async with engine.begin() as conn:
        await sessions.create(
            conn,
            session_id=session,
            human_id=human,
            refresh_jti=str(uuid.uuid4()),
            expires_at=datetime.now(UTC) + timedelta(days=1),
        )
    await engine.dispose()
    access = token_signer(settings).issue(
        human_id=human, session_id=session, type=TokenType.ACCESS, lifetime=timedelta(minutes=15)
    )
    return human, session, access.token


async def test_a_registered_service_is_served_checked_routed_and_reflected(
    compiled: echo.Echo, echo_service: RunningService, settings: Settings, tmp_path: Path
) -> None:
    registry = REGISTRY.with_service(compiled.definition)
    assert registry.names[-1] == "echo"
    assert registry.settings_type()(_env_file=None).service_ports("echo") == (50099, 9199)  # type: ignore[call-arg]
    assert compiled.definition.routed_services == (echo.SERVICE,)
    assert compiled.definition.read_only_methods == (f"/{echo.SERVICE}/Echo",)

    health = health_pb2_grpc.HealthStub(echo_service.channel)
    reply = await health.Check(health_pb2.HealthCheckRequest(service=echo.SERVICE))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING

    # In a thread: the service answers Envoy's health checks on this event loop meanwhile.
    envoy = await asyncio.to_thread(
        EnvoyProcess.start_for,
        lambda port, admin_port: local_spec(
            service_ports={"echo": echo_service.server.port},
            listen_port=port,
            admin_port=admin_port,
            descriptor_set=compiled.descriptor_set,
            registry=registry,
        ),
        work_dir=tmp_path / "envoy",
    )
    try:
        # JSON, transcoded from the service's own HTTP binding.
        async with httpx.AsyncClient(base_url=envoy.base_url) as client:
            answer = await client.get("/api/v1/echo/hello")
            assert answer.status_code == 200
            assert answer.json() == {"text": "hello"}
            assert (await client.get("/health")).status_code == 200
            # An RPC only humans may call: a human's access token gets through, nothing else.
            human, session, token = await _human_token(settings)
            me = await client.post(
                "/api/v1/echo:whoami", json={}, headers={"authorization": f"Bearer {token}"}
            )
            assert me.status_code == 200
            assert me.json() == {"humanId": human, "sessionId": session}
            refused = json_error(await client.post("/api/v1/echo:whoami", json={}), 401)
            assert refused.reason == "TOKEN_MISSING"
        # gRPC, and reflection listing it.
        async with grpc.aio.insecure_channel(envoy.grpc_target) as channel:
            call = channel.unary_unary(
                f"/{echo.SERVICE}/Echo",
                request_serializer=compiled.pb2.EchoRequest.SerializeToString,
                response_deserializer=compiled.pb2.EchoResponse.FromString,
            )
            assert (await call(compiled.pb2.EchoRequest(text="over grpc"))).text == "over grpc"
        services = await asyncio.to_thread(_reflected_services, envoy.grpc_target)
        assert echo.SERVICE in services
    finally:
        envoy.stop()
