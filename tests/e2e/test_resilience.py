"""A dedicated stack with the per-IP auth limit at 3 and its own PostgreSQL, which tests stop.

Per-IP limits are tested from distinct loopback source addresses (127.0.0.x), so each test has
its own bucket: Envoy reports the TCP peer, which is exactly what these tests are about.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest
from betterworld.agent.v1 import agent_pb2 as pb
from betterworld.agent.v1 import agent_pb2_grpc as pb_grpc
from betterworld.common.v1 import readiness_pb2, readiness_pb2_grpc

from services.core.migrate import upgrade
from tests.support.e2e_http import (
    ME,
    REGISTER,
    assert_no_leak,
    bearer,
    json_error,
    seconds,
    service_error,
    unique,
)
from tests.support.e2e_stack import Stack, redis_db, start_stack, track, untrack
from tests.support.helpers import unpack
from tooling.devstack import EmbeddedPostgres, EmbeddedValkey, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

AUTH_LIMIT = 3
PUBLIC_LIMIT = 300  # the default
RECOVERY_SECONDS = 15.0


@pytest.fixture(scope="module")
def own_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL of this module's own, so stopping it disturbs no other test."""
    server = EmbeddedPostgres(tmp_path_factory.mktemp("pg-outage") / "data", port=free_port())
    server.start()
    try:
        upgrade(server.url)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def limited_stack(
    own_postgres: EmbeddedPostgres,
    valkey: EmbeddedValkey,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    stack = start_stack(
        database_url=own_postgres.url,
        redis_url=redis_db(valkey.url, 5),
        work_dir=tmp_path_factory.mktemp("e2e-limited"),
        extra_env={
            "RATE_LIMIT_AUTH_PER_IP": str(AUTH_LIMIT),
            "RATE_LIMIT_PUBLIC_PER_IP": str(PUBLIC_LIMIT),
            "RATE_LIMIT_AGENT_PENDING": "10000",
        },
    )
    track(stack)
    try:
        yield stack
    finally:
        untrack(stack)
        stack.stop()


def client_from(stack: Stack, source_ip: str) -> httpx.Client:
    """An HTTP client whose connections come from `source_ip` (any 127.0.0.0/8 address)."""
    return httpx.Client(
        base_url=stack.base_url,
        timeout=10,
        transport=httpx.HTTPTransport(local_address=source_ip),
    )


def registration() -> dict[str, Any]:
    return {"username": unique("lim"), "framework": "custom", "specializations": ["elder_care"]}


def wait_status(
    client: httpx.Client,
    path: str,
    status: int,
    timeout: float,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """Polls `path` until it answers `status`; the last response otherwise fails the test."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(path, headers=headers)
        if response.status_code == status:
            return response
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{path} not {status} within {timeout} s: {response.status_code} {response.text}"
            )
        time.sleep(0.1)


SPOOFS: list[dict[str, str]] = [
    {"x-forwarded-for": "203.0.113.1"},
    {"x-bw-client-ip": "203.0.113.2"},
    {"x-forwarded-for": "198.51.100.7, 203.0.113.3", "x-real-ip": "203.0.113.4"},
    {
        "forwarded": "for=203.0.113.5",
        "x-envoy-external-address": "203.0.113.6",
        "x-bw-client-ip": "10.0.0.1",
        "x-forwarded-for": "10.0.0.1",
        "x-envoy-internal": "true",
    },
]


def test_forwarded_headers_do_not_escape_the_per_ip_auth_limit(limited_stack: Stack) -> None:
    with client_from(limited_stack, "127.0.0.2") as client:
        for expected_remaining, spoof in zip(range(AUTH_LIMIT - 1, -1, -1), SPOOFS, strict=False):
            response = client.post(REGISTER, json=registration(), headers=spoof)
            assert response.status_code == 201, response.text
            assert response.headers["x-ratelimit-limit"] == str(AUTH_LIMIT)
            assert response.headers["x-ratelimit-remaining"] == str(expected_remaining)

        response = client.post(REGISTER, json=registration(), headers=SPOOFS[-1])
        error = service_error(response, 429, "RATE_LIMITED")
        assert error.code == 8
        assert error.quota_subjects == ["auth"]
        retry_after = int(response.headers["retry-after"])
        assert 1 <= retry_after <= 60
        assert response.headers["x-ratelimit-limit"] == str(AUTH_LIMIT)
        assert response.headers["x-ratelimit-remaining"] == "0"
        assert int(response.headers["x-ratelimit-reset"]) >= 1
        assert error.retry_delay is not None
        assert 0 < seconds(error.retry_delay) <= retry_after

        # Every spoof is still throttled, whatever address it claims.
        for spoof in SPOOFS:
            assert client.post(REGISTER, json=registration(), headers=spoof).status_code == 429

    # A client that really connects from elsewhere has its own budget.
    with client_from(limited_stack, "127.0.0.3") as other:
        response = other.post(REGISTER, json=registration())
        assert response.status_code == 201, response.text
        assert response.headers["x-ratelimit-remaining"] == str(AUTH_LIMIT - 1)


async def test_grpc_metadata_does_not_escape_the_per_ip_auth_limit(limited_stack: Stack) -> None:
    async with grpc.aio.insecure_channel(limited_stack.grpc_target) as channel:
        agents = pb_grpc.AgentServiceStub(channel)

        def request() -> pb.RegisterAgentRequest:
            return pb.RegisterAgentRequest(
                username=unique("glim"), framework=pb.CUSTOM, specializations=[1]
            )

        for i in range(AUTH_LIMIT):
            spoof = (("x-bw-client-ip", f"203.0.113.{i}"), ("x-forwarded-for", f"198.51.100.{i}"))
            await agents.RegisterAgent(request(), metadata=spoof)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await agents.RegisterAgent(request(), metadata=(("x-bw-client-ip", "192.0.2.99"),))
    error = unpack(info.value)
    assert (error.code, error.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "RATE_LIMITED")
    assert error.retry_delay_seconds is not None and error.retry_delay_seconds > 0
    assert int(error.trailing["retry-after"]) >= 1


def test_first_public_request_reports_limit_minus_one_remaining(limited_stack: Stack) -> None:
    with client_from(limited_stack, "127.0.0.6") as client:
        response = client.get("/api/v1/agents", params={"limit": 1})
    assert response.status_code == 200, response.text
    assert response.headers["x-ratelimit-limit"] == str(PUBLIC_LIMIT)
    assert response.headers["x-ratelimit-remaining"] == str(PUBLIC_LIMIT - 1)


def _direct_readiness(stack: Stack) -> readiness_pb2.GetReadinessResponse:
    with grpc.insecure_channel(stack.agent.address) as channel:
        return readiness_pb2_grpc.ReadinessServiceStub(channel).GetReadiness(
            readiness_pb2.GetReadinessRequest(), timeout=5
        )


def _wait_recovered(client: httpx.Client, auth: dict[str, str]) -> None:
    wait_status(client, "/ready", 200, RECOVERY_SECONDS)
    wait_status(client, "/health", 200, RECOVERY_SECONDS)
    wait_status(client, ME, 200, RECOVERY_SECONDS, headers=auth)


def test_postgres_outage_is_503_and_recovers_by_itself(
    limited_stack: Stack, own_postgres: EmbeddedPostgres
) -> None:
    service_pid = limited_stack.agent.child.pid
    with client_from(limited_stack, "127.0.0.4") as client:
        response = client.post(REGISTER, json=registration())
        assert response.status_code == 201, response.text
        auth = bearer(response.json()["apiKey"])
        assert client.get(ME, headers=auth).status_code == 200
        assert client.get("/ready").status_code == 200

        try:
            own_postgres.stop()

            ready = wait_status(client, "/ready", 503, 10)
            assert ready.headers["content-type"].startswith("application/json")
            assert_no_leak(ready.text)
            body = ready.json()
            if "checks" in body:  # answered by the service (before Envoy saw it unhealthy)
                assert body["ready"] is False
                checks = {c["name"]: c for c in body["checks"]}
                assert checks["database"]["ok"] is False
                assert checks["redis"]["ok"] is True
            else:  # answered by Envoy: no healthy upstream
                assert body["code"] == 14

            wait_status(client, "/health", 503, 10)
            error = json_error(client.get(ME, headers=auth), 503)
            assert error.code == 14

            with (
                grpc.insecure_channel(limited_stack.grpc_target) as channel,
                pytest.raises(grpc.RpcError) as info,
            ):
                pb_grpc.AgentServiceStub(channel).GetMe(
                    pb.GetMeRequest(), metadata=tuple(auth.items()), timeout=5
                )
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]

            # The service itself, asked directly, names the dependency and maps the failure.
            readiness = _direct_readiness(limited_stack)
            assert readiness.ready is False
            checks = {c.name: c for c in readiness.checks}
            assert checks["database"].ok is False and checks["database"].error
            assert checks["redis"].ok is True
            with (
                grpc.insecure_channel(limited_stack.agent.address) as channel,
                pytest.raises(grpc.RpcError) as info,
            ):
                pb_grpc.AgentServiceStub(channel).GetMe(
                    pb.GetMeRequest(), metadata=tuple(auth.items()), timeout=10
                )
            direct = unpack(info.value)  # type: ignore[arg-type]
            assert direct.code == grpc.StatusCode.UNAVAILABLE
            assert direct.reason == "DEPENDENCY_UNAVAILABLE"
            assert_no_leak(direct.message)
        finally:
            own_postgres.start()

        _wait_recovered(client, auth)
        ready = client.get("/ready").json()
        assert ready["ready"] is True
        assert all(check["ok"] for check in ready["checks"])
        assert client.get(ME, headers=auth).json()["username"]
    # Recovered without a restart.
    assert limited_stack.agent.child.alive()
    assert limited_stack.agent.child.pid == service_pid


def test_ready_names_the_failed_dependency_during_a_sustained_outage(
    limited_stack: Stack, own_postgres: EmbeddedPostgres
) -> None:
    with client_from(limited_stack, "127.0.0.5") as client:
        response = client.post(REGISTER, json=registration())
        assert response.status_code == 201, response.text
        auth = bearer(response.json()["apiKey"])
        try:
            own_postgres.stop()
            wait_status(client, "/health", 503, 10)
            ready = client.get("/ready")
            assert ready.status_code == 503
            body = ready.json()
            assert body.get("ready") is False, body
            checks = {c["name"]: c for c in body["checks"]}
            assert checks["database"]["ok"] is False
            assert checks["redis"]["ok"] is True
        finally:
            own_postgres.start()
            _wait_recovered(client, auth)
