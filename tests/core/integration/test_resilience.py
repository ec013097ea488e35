"""Dependency outages over real gRPC: PostgreSQL down and back, health and readiness, metrics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from betterworld.agent.v1 import agent_pb2 as pb
from betterworld.common.v1 import readiness_pb2, readiness_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.agent.definition import DEFINITION
from services.core.migrate import upgrade
from services.core.settings import Settings
from tests.support.agents import register
from tests.support.helpers import RunningService, bearer, start_service, unpack
from tooling.devstack import EmbeddedPostgres, free_port

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL this test may stop and start without disturbing the others."""
    server = EmbeddedPostgres(tmp_path / "pg", port=free_port())
    server.start()
    upgrade(server.url)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def fragile_service(
    settings: Settings, own_postgres: EmbeddedPostgres, clean_state: None
) -> AsyncIterator[RunningService]:
    service = await start_service(
        DEFINITION,
        settings.model_copy(
            update={"database_url": own_postgres.url, "database_timeout_seconds": 1.0}
        ),
    )
    try:
        yield service
    finally:
        await service.stop()


async def _health(service: RunningService, name: str = "") -> int:
    stub = health_pb2_grpc.HealthStub(service.channel)
    return (await stub.Check(health_pb2.HealthCheckRequest(service=name))).status  # type: ignore[no-any-return]


async def _eventually(predicate: object, timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if await predicate():  # type: ignore[operator]
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.2)


async def test_postgres_outage_is_unavailable_and_recovers_by_itself(
    fragile_service: RunningService, own_postgres: EmbeddedPostgres
) -> None:
    reg = await register(fragile_service, "outage-agent")
    auth = bearer(reg.api_key)
    readiness = readiness_pb2_grpc.ReadinessServiceStub(fragile_service.channel)
    assert await _health(fragile_service) == SERVING
    assert await _health(fragile_service, "betterworld.agent.v1.AgentService") == SERVING

    await asyncio.to_thread(own_postgres.stop)

    async def not_serving() -> bool:
        return await _health(fragile_service) == NOT_SERVING

    await _eventually(not_serving)
    ready = await readiness.GetReadiness(readiness_pb2.GetReadinessRequest())
    assert not ready.ready
    assert {c.name: c.ok for c in ready.checks} == {"database": False, "redis": True}
    with pytest.raises(grpc.aio.AioRpcError) as info:
        # A fresh username: the key of an existing one may still be cached in Redis.
        await register(fragile_service, "during-outage")
    error = unpack(info.value)
    assert error.code == grpc.StatusCode.UNAVAILABLE
    assert error.reason == "DEPENDENCY_UNAVAILABLE"
    assert "asyncpg" not in error.message and "Connection" not in error.message

    await asyncio.to_thread(own_postgres.start)

    async def serving() -> bool:
        return await _health(fragile_service) == SERVING

    await _eventually(serving)
    me = await fragile_service.agents.GetMe(pb.GetMeRequest(), metadata=auth)
    assert me.username == "outage-agent"
    assert (await readiness.GetReadiness(readiness_pb2.GetReadinessRequest())).ready


async def test_metrics_count_rpcs_by_code(settings: Settings, clean_state: None) -> None:
    port = free_port()
    service = await start_service(DEFINITION, settings, metrics_port=port)
    try:
        await register(service, "metric-agent")
        with pytest.raises(grpc.aio.AioRpcError):
            await service.agents.GetMe(pb.GetMeRequest())
        async with httpx.AsyncClient() as client:
            text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    finally:
        await service.stop()
    labels = 'grpc_method="GetMe",grpc_service="betterworld.agent.v1.AgentService"'
    assert (
        f'grpc_server_handled_total{{grpc_code="UNAUTHENTICATED",{labels},grpc_type="unary"}}'
        in text
    )
    assert "grpc_server_started_total{" in text
    assert 'grpc_server_handling_seconds_bucket{grpc_method="RegisterAgent"' in text
    # Nothing is being served while /metrics answers; the pool has its configured size.
    in_flight = 'grpc_server_in_flight{grpc_service="betterworld.agent.v1.AgentService",'
    assert f'{in_flight}grpc_type="unary"}} 0.0' in text
    assert f'db_pool_connections{{state="size"}} {float(settings.database_pool_size)}' in text
    assert 'db_pool_connections{state="in_use"} 0.0' in text
