"""SIGTERM while a request is in flight: it completes, new calls are refused, exit code 0."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from pathlib import Path

import asyncpg
import grpc
import pytest
from betterworld.agent.v1 import agent_pb2 as pb
from betterworld.agent.v1 import agent_pb2_grpc as pb_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.e2e_http import unique
from tests.support.e2e_stack import AgentProcess, redis_db
from tests.support.helpers import bearer
from tooling.devstack import EmbeddedPostgres, EmbeddedValkey

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

GRACE_SECONDS = 10
LOCK_HELD_AFTER_SIGTERM = 1.0


async def _wait_until_blocked_on_a_lock(dsn: str, timeout: float = 10.0) -> None:
    """Waits until some backend waits for a lock (the UpdateMe behind our row lock)."""
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            waiting = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            )
            if waiting:
                return
            await asyncio.sleep(0.05)
    finally:
        await conn.close()
    raise AssertionError("the UpdateMe never blocked on the row lock")


async def test_sigterm_drains_in_flight_rpcs_and_refuses_new_ones(
    postgres: EmbeddedPostgres, valkey: EmbeddedValkey, tmp_path: Path
) -> None:
    service = await asyncio.to_thread(
        AgentProcess.start,
        database_url=postgres.url,
        redis_url=redis_db(valkey.url, 4),
        data_dir=tmp_path,
        extra_env={"GRACE_SECONDS": str(GRACE_SECONDS), "RATE_LIMIT_AUTH_PER_IP": "1000"},
        name="agent-sigterm",
    )
    lock_conn: asyncpg.Connection | None = None
    try:
        async with grpc.aio.insecure_channel(service.address) as channel:
            agents = pb_grpc.AgentServiceStub(channel)
            registered = await agents.RegisterAgent(
                pb.RegisterAgentRequest(
                    username=unique("drain"), framework=pb.CUSTOM, specializations=[1]
                )
            )
            auth = bearer(registered.api_key)
            await agents.GetMe(pb.GetMeRequest(), metadata=auth)

            watch = health_pb2_grpc.HealthStub(channel).Watch(
                health_pb2.HealthCheckRequest(service="")
            )
            first = await watch.read()
            assert first.status == health_pb2.HealthCheckResponse.SERVING

            # Hold the agent's row so that an UpdateMe is in flight for as long as we like.
            lock_conn = await asyncpg.connect(postgres.dsn)
            lock = lock_conn.transaction()
            await lock.start()
            await lock_conn.execute(
                "SELECT id FROM agents WHERE id = $1 FOR UPDATE", uuid.UUID(registered.agent_id)
            )
            in_flight = asyncio.ensure_future(
                agents.UpdateMe(
                    pb.UpdateMeRequest(display_name="survived sigterm"),
                    metadata=auth,
                    timeout=GRACE_SECONDS + 10,
                )
            )
            await _wait_until_blocked_on_a_lock(postgres.dsn)

            service.child.signal(signal.SIGTERM)
            signalled = time.monotonic()

            # Health turns NOT_SERVING at once, so load balancers stop sending traffic.
            second = await asyncio.wait_for(watch.read(), 5)
            assert second.status == health_pb2.HealthCheckResponse.NOT_SERVING
            watch.cancel()

            # A new call is refused while the old one drains.
            async with grpc.aio.insecure_channel(service.address) as fresh:
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await pb_grpc.AgentServiceStub(fresh).GetMe(
                        pb.GetMeRequest(), metadata=auth, timeout=5
                    )
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await agents.GetAgent(pb.GetAgentRequest(agent_id=registered.agent_id), timeout=5)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE

            assert not in_flight.done(), "UpdateMe finished although its row was locked"
            assert service.child.alive(), "the service exited before its in-flight RPC ended"
            await asyncio.sleep(max(0.0, LOCK_HELD_AFTER_SIGTERM - (time.monotonic() - signalled)))
            await lock.rollback()

            updated = await asyncio.wait_for(in_flight, GRACE_SECONDS)
            assert updated.display_name == "survived sigterm"

        exit_code = await asyncio.to_thread(service.child.proc.wait, GRACE_SECONDS + 5)
        assert exit_code == 0, service.child.log()
        assert time.monotonic() - signalled < GRACE_SECONDS
        stored = await lock_conn.fetchval(
            "SELECT display_name FROM agents WHERE id = $1", uuid.UUID(registered.agent_id)
        )
        assert stored == "survived sigterm"
    finally:
        if lock_conn is not None:
            await lock_conn.close()
        await asyncio.to_thread(service.stop)
