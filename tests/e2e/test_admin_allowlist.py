"""The admin allow-list at Envoy: /api/v1/admin/* (and the same RPCs over gRPC) only from the
listed networks, 403 from anywhere else; every other route unaffected."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import httpx
import pytest
from betterworld.agent.v1 import agent_pb2 as pb
from betterworld.agent.v1 import agent_pb2_grpc as pb_grpc

from tests.support.e2e_http import ME, bearer, json_error, register
from tests.support.e2e_stack import EnvoyProcess, Stack
from tooling.edge.envoy_config import local_spec

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

OUTSIDE = ("192.0.2.0/24", "10.0.0.0/8")
"""Networks that do not contain 127.0.0.1, the address the tests connect from."""
INSIDE = ("10.0.0.0/8", "127.0.0.0/8")


def _envoy(stack: Stack, cidrs: tuple[str, ...], work: pytest.TempPathFactory) -> EnvoyProcess:
    return EnvoyProcess.start_for(
        lambda port, admin_port: local_spec(
            service_ports={"agent": stack.agent.port},
            listen_port=port,
            admin_port=admin_port,
            admin_allow_cidrs=cidrs,
        ),
        work_dir=work.mktemp("envoy-admin"),
    )


@pytest.fixture(scope="module")
def outside(e2e_stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EnvoyProcess]:
    envoy = _envoy(e2e_stack, OUTSIDE, tmp_path_factory)
    try:
        yield envoy
    finally:
        envoy.stop()


@pytest.fixture(scope="module")
def inside(e2e_stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EnvoyProcess]:
    envoy = _envoy(e2e_stack, INSIDE, tmp_path_factory)
    try:
        yield envoy
    finally:
        envoy.stop()


def _rate_limit_path(agent_id: str) -> str:
    return f"/api/v1/admin/agents/{agent_id}/rate-limit"


async def _grpc_set_rate_limit(envoy: EnvoyProcess, agent_id: str, key: str) -> grpc.StatusCode:
    async with grpc.aio.insecure_channel(envoy.grpc_target) as channel:
        try:
            await pb_grpc.AgentAdminServiceStub(channel).SetRateLimit(
                pb.SetRateLimitRequest(agent_id=agent_id, limit_per_minute=500),
                metadata=(("authorization", f"Bearer {key}"),),
                timeout=10,
            )
        except grpc.aio.AioRpcError as exc:
            return exc.code()
    return grpc.StatusCode.OK


async def test_admin_routes_refused_from_outside_the_list(
    outside: EnvoyProcess, e2e_stack: Stack, operator_key: str
) -> None:
    with httpx.Client(base_url=outside.base_url, timeout=10) as http:
        # Every other route works through the same Envoy: sign-up, an agent's own profile.
        agent = register(http, "allowlist")
        before = http.get(ME, headers=agent["auth"])
        assert before.status_code == 200, before.text

        for path in (
            _rate_limit_path(agent["agentId"]),
            # Spellings that normalise to the same route are refused the same way.
            f"/api/v1//admin/agents/{agent['agentId']}/rate-limit",
            f"/api/v1/agents/../admin/agents/{agent['agentId']}/rate-limit",
        ):
            denied = http.put(path, headers=bearer(operator_key), json={"limitPerMinute": 3})
            error = json_error(denied, 403)
            assert (error.code, error.reason, error.domain) == (
                7,
                "PERMISSION_DENIED",
                "edge.betterworld",
            ), path
        deactivate = f"/api/v1/admin/agents/{agent['agentId']}:deactivate"
        assert http.post(deactivate, headers=bearer(operator_key), json={}).status_code == 403

    assert (
        await _grpc_set_rate_limit(outside, agent["agentId"], operator_key)
        == grpc.StatusCode.PERMISSION_DENIED
    )
    # Nothing reached the service: the agent is still active, at the limit it had (read through
    # the session's Envoy, which has no allow-list).
    with httpx.Client(base_url=e2e_stack.base_url, timeout=10) as http:
        after = http.get(ME, headers=agent["auth"])
    assert after.status_code == 200, after.text
    assert after.json()["rateLimitPerMinute"] == before.json()["rateLimitPerMinute"] not in (3, 500)


async def test_admin_routes_work_from_inside_the_list(
    inside: EnvoyProcess, operator_key: str
) -> None:
    with httpx.Client(base_url=inside.base_url, timeout=10) as http:
        agent = register(http, "allowlist")
        path = _rate_limit_path(agent["agentId"])
        # Past Envoy, the service still asks for an operator key.
        anonymous = json_error(http.put(path, json={"limitPerMinute": 3}), 401)
        assert anonymous.domain == "agent.betterworld"
        applied = http.put(path, headers=bearer(operator_key), json={"limitPerMinute": 3})
        assert applied.status_code == 200, applied.text
        assert applied.json()["rateLimitPerMinute"] == 3

    assert await _grpc_set_rate_limit(inside, agent["agentId"], operator_key) == grpc.StatusCode.OK
