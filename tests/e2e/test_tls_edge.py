"""Envoy terminating TLS in front of the real agent service: HTTPS and gRPC over TLS on one
port, verified against the `betterworld dev-cert` CA; plain connections fail."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest
from betterworld.agent.v1 import agent_pb2 as pb
from betterworld.agent.v1 import agent_pb2_grpc as pb_grpc
from betterworld.common.v1 import common_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.e2e_http import REGISTER, bearer, unique
from tests.support.e2e_stack import START_TIMEOUT_SECONDS, Child, Stack, _envoy_binary, spawn
from tooling.devcert import DevCertificates, make_dev_certificates
from tooling.devstack import free_port
from tooling.edge.envoy_config import SECURITY_HEADERS, dump, local_spec, render_envoy_config
from tooling.edge.tls import EdgeTls

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]


@dataclass
class TlsEdge:
    """Envoy with TLS on its public port, and the CA that signed its certificate."""

    child: Child
    port: int
    certs: DevCertificates

    @property
    def https_url(self) -> str:
        return f"https://localhost:{self.port}"

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.certs.ca_cert))


def _wait_healthy(edge: TlsEdge) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if not edge.child.alive():
            raise RuntimeError(f"envoy exited\n{edge.child.log()}")
        try:
            health = httpx.get(f"{edge.https_url}/health", verify=edge.client_context(), timeout=1)
            if health.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"envoy /health not 200 over TLS\n{edge.child.log()}")


@pytest.fixture(scope="module")
def tls_edge(e2e_stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsEdge]:
    """A second Envoy, with TLS, in front of the session's agent service."""
    work = tmp_path_factory.mktemp("tls-edge")
    certs = make_dev_certificates(work / "tls")
    port = free_port()
    spec = local_spec(
        service_ports={"agent": e2e_stack.agent.port},
        listen_port=port,
        admin_port=free_port(),
        tls=EdgeTls(cert_file=str(certs.cert), key_file=str(certs.key)),
    )
    config = work / "envoy.json"
    config.write_text(dump(render_envoy_config(spec)))
    child = spawn(
        "envoy-tls",
        [_envoy_binary(), "-c", str(config), "--log-level", "warn", "--disable-hot-restart"],
        env={},
        log_dir=work,
    )
    edge = TlsEdge(child, port, certs)
    try:
        _wait_healthy(edge)
        yield edge
    finally:
        child.stop()


@pytest.fixture
async def https(tls_edge: TlsEdge) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=tls_edge.https_url, verify=tls_edge.client_context(), timeout=10
    ) as client:
        yield client


async def test_json_api_over_https(https: httpx.AsyncClient) -> None:
    health = await https.get("/health")
    assert health.status_code == 200
    assert health.extensions["http_version"] == b"HTTP/1.1"

    registered = await https.post(
        REGISTER,
        json={
            "username": unique("tls"),
            "framework": "langchain",
            "specializations": ["food_security"],
        },
    )
    assert registered.status_code == 201, registered.text
    me = await https.get("/api/v1/agents/me", headers=bearer(registered.json()["apiKey"]))
    assert me.status_code == 200, me.text
    assert me.json()["username"] == registered.json()["username"]
    for name, value in SECURITY_HEADERS.items():
        assert me.headers[name] == value
    assert (await https.get("/ready")).json()["ready"] is True


async def test_the_certificate_is_for_the_loopback_address_too(tls_edge: TlsEdge) -> None:
    async with httpx.AsyncClient(verify=tls_edge.client_context(), timeout=10) as client:
        health = await client.get(f"https://127.0.0.1:{tls_edge.port}/health")
    assert health.status_code == 200


async def test_grpc_over_tls(tls_edge: TlsEdge) -> None:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=tls_edge.certs.ca_cert.read_bytes()
    )
    async with grpc.aio.secure_channel(f"localhost:{tls_edge.port}", credentials) as channel:
        checked = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=5
        )
        assert checked.status == health_pb2.HealthCheckResponse.SERVING
        agents = pb_grpc.AgentServiceStub(channel)
        registered = await agents.RegisterAgent(
            pb.RegisterAgentRequest(
                username=unique("tlsgrpc"),
                framework=pb.CREWAI,
                specializations=[common_pb2.DISASTER_RESPONSE],
            ),
            timeout=10,
        )
        me = await agents.GetMe(
            pb.GetMeRequest(),
            metadata=(("authorization", f"Bearer {registered.api_key}"),),
            timeout=10,
        )
        assert me.username == registered.username


async def test_a_client_that_does_not_trust_the_ca_is_refused(
    tls_edge: TlsEdge, tmp_path: Path
) -> None:
    stranger = make_dev_certificates(tmp_path / "other-ca")
    context = ssl.create_default_context(cafile=str(stranger.ca_cert))
    async with httpx.AsyncClient(verify=context, timeout=5) as client:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await client.get(f"{tls_edge.https_url}/health")


async def test_plain_http_and_plaintext_grpc_to_the_tls_port_fail(tls_edge: TlsEdge) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        with pytest.raises(httpx.TransportError):
            await client.get(f"http://127.0.0.1:{tls_edge.port}/health")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{tls_edge.port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await asyncio.wait_for(
                health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=""), timeout=3
                ),
                10,
            )
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    # Envoy is still serving TLS after the failed handshakes.
    async with httpx.AsyncClient(verify=tls_edge.client_context(), timeout=5) as client:
        assert (await client.get(f"{tls_edge.https_url}/health")).status_code == 200
