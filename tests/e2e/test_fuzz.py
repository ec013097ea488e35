"""Property-based junk through Envoy: every public RPC, JSON and gRPC, never a 500 or a leak.

The e2e stack's rate limits are far above what these tests send, so a 429 (allowed: the
verification-email limit is 3 an hour) never hides a bug.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from typing import Any
from urllib.parse import quote, urlencode

import grpc
import httpx
import pytest
from betterworld.agent.v1 import agent_pb2
from google.protobuf import descriptor as pb_descriptor
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.e2e_http import LEAK_MARKERS, bearer, register
from tests.support.e2e_stack import Stack, create_operator_key
from tests.support.helpers import unpack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

ALLOWED_HTTP = {200, 201, 400, 401, 403, 404, 409, 413, 429, 431}
ALLOWED_GRPC = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}
MIB = 1024 * 1024

FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


@dataclass(frozen=True)
class Route:
    """One HTTP binding of a public RPC."""

    rpc: str
    method: str
    path: str
    fields: tuple[str, ...] = ()
    """JSON names of the request's body fields (empty for GET bindings)."""

    @property
    def has_body(self) -> bool:
        return self.method != "GET"


ROUTES = (
    Route(
        "RegisterAgent",
        "POST",
        "/api/v1/auth/agents/register",
        (
            "username",
            "framework",
            "specializations",
            "email",
            "displayName",
            "soulSummary",
            "modelProvider",
            "modelName",
        ),
    ),
    Route("GetMe", "GET", "/api/v1/agents/me"),
    Route(
        "UpdateMe",
        "PATCH",
        "/api/v1/agents/me",
        ("displayName", "email", "soulSummary", "modelProvider", "modelName", "specializations"),
    ),
    Route("GetAgent", "GET", "/api/v1/agents/{agentId}"),
    Route("ListAgents", "GET", "/api/v1/agents"),
    Route("RotateApiKey", "POST", "/api/v1/auth/agents/rotate-key"),
    Route("RequestVerification", "POST", "/api/v1/auth/agents/verify/resend"),
    Route("VerifyAgent", "POST", "/api/v1/auth/agents/verify", ("verificationCode",)),
    Route("GetHeartbeatInstructions", "GET", "/api/v1/heartbeat/instructions"),
    Route(
        "Checkin",
        "POST",
        "/api/v1/heartbeat/checkin",
        ("timestamp", "instructionsVersion", "activitySummary", "clientVersion"),
    ),
    Route("ListHeartbeatKeys", "GET", "/api/v1/heartbeat/keys"),
    Route(
        "SetVerificationStatus",
        "PATCH",
        "/api/v1/admin/agents/{agentId}/verification",
        ("claimStatus",),
    ),
    Route("SetRateLimit", "PUT", "/api/v1/admin/agents/{agentId}/rate-limit", ("limitPerMinute",)),
    Route("DeactivateAgent", "POST", "/api/v1/admin/agents/{agentId}:deactivate", ("reason",)),
    Route("ReactivateAgent", "POST", "/api/v1/admin/agents/{agentId}:reactivate", ("reason",)),
)
GRPC_METHODS = {
    f"/{service.full_name}/{method.name}": method
    for service in agent_pb2.DESCRIPTOR.services_by_name.values()
    for method in service.methods
}


# --- strategies ---------------------------------------------------------------------------

texts = st.text(max_size=40) | st.text(
    alphabet=st.characters(codec="utf-8", categories=("Cc", "Cf", "Zs", "So", "Lo")),
    max_size=40,
)
huge_texts = st.builds(
    lambda unit, count: unit * count,
    st.sampled_from(["a", "é", "😀", "\x00", "\u202e", "-"]),
    st.sampled_from([101, 201, 2001, 5000, 70_000]),
)
enum_names = st.sampled_from(
    [
        "langchain",
        "CREWAI",
        "Custom",
        "FRAMEWORK_UNSPECIFIED",
        "food_security",
        "ELDER_CARE",
        "PENDING",
        "verified",
        "CLAIM_STATUS_UNSPECIFIED",
        "nonsense",
        "",
    ]
)
timestamps = st.datetimes(timezones=st.just(UTC)).map(
    lambda d: d.isoformat().replace("+00:00", "Z")
) | st.sampled_from(
    ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999Z", "2026-13-45T99:99:99Z", "now"]
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts
    | enum_names
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(texts | enum_names, children, max_size=4)
    ),
    max_leaves=12,
)
right_types: dict[str, st.SearchStrategy[Any]] = {
    "username": st.from_regex(r"[a-z0-9][a-z0-9_-]{1,30}[a-z0-9]", fullmatch=True) | texts,
    "framework": enum_names | st.integers(-5, 10),
    "specializations": st.lists(enum_names | st.integers(-2, 20), max_size=7),
    "email": st.emails() | texts,
    "timestamp": timestamps,
    "activitySummary": st.fixed_dictionaries(
        {},
        optional={
            "problemsReviewed": st.integers(-(2**31), 2**31 - 1),
            "notes": texts | huge_texts,
            "evidenceReviewed": st.integers(-(2**31), 2**31 - 1),
        },
    ),
    "claimStatus": enum_names | st.integers(-1, 5),
    "limitPerMinute": st.integers(-(2**31), 2**31 - 1),
    "verificationCode": st.from_regex(r"[0-9]{6}", fullmatch=True) | texts,
}


def field_value(name: str) -> st.SearchStrategy[Any]:
    return right_types.get(name, texts) | huge_texts | json_values


@st.composite
def json_bodies(draw: st.DrawFn, route: Route) -> bytes:
    """Bodies from plausible to garbage, as bytes on the wire."""
    kind = draw(
        st.sampled_from(["object", "object", "object", "any-json", "bytes", "broken", "oversize"])
    )
    if kind == "oversize":  # just over Envoy's 1 MiB body limit
        field = draw(st.sampled_from(route.fields or ("x",)))
        return json.dumps({field: "a" * (MIB + draw(st.integers(1, 100)))}).encode()
    if kind == "object":
        body = draw(st.fixed_dictionaries({}, optional={f: field_value(f) for f in route.fields}))
        body.update(draw(st.dictionaries(texts, json_values, max_size=3)))
        if draw(st.integers(0, 7)) == 0:
            body = {"wrapper": body}
        return json.dumps(body, ensure_ascii=draw(st.booleans())).encode()
    if kind == "any-json":
        return json.dumps(draw(json_values)).encode()
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    text = json.dumps(draw(st.dictionaries(texts, json_values, max_size=3)))
    cut = draw(st.integers(0, max(0, len(text) - 1)))
    return (text[:cut] + draw(st.sampled_from(["", "}", ",", "\x00", "\\u"]))).encode()


path_segments = (
    st.text(max_size=60).map(lambda s: quote(s, safe=""))
    | st.text(alphabet="./%:;@$&+=,", max_size=8)
    | st.uuids().map(str)
    # Long paths, up to the 16 KiB header limit (beyond it Envoy answers 431, tested in
    # test_json_errors).
    | huge_texts.map(lambda s: quote(s[:3000], safe=""))
)
query_strings = st.dictionaries(
    st.sampled_from(
        ["limit", "cursor", "framework", "specialization", "isActive", "is_active", "sort"]
    )
    | texts,
    st.integers(-(2**40), 2**40).map(str) | texts | enum_names,
    max_size=4,
).map(lambda q: urlencode(q)) | st.text(max_size=60).map(lambda s: quote(s, safe="=&"))


# --- fixtures -----------------------------------------------------------------------------


@dataclass
class Credentials:
    agent: str
    operator: str
    target_agent_id: str
    """An agent that admin calls may change (never the one whose key the fuzzer uses)."""


@pytest.fixture(scope="module")
def fuzz_client(e2e_stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=e2e_stack.base_url, timeout=15) as client:
        yield client


@pytest.fixture(scope="module")
def creds(e2e_stack: Stack, fuzz_client: httpx.Client) -> Credentials:
    agent = register(fuzz_client, "fuzzer", email="fuzzer@example.org")
    target = register(fuzz_client, "fuzz-target")
    return Credentials(
        agent=agent["apiKey"],
        operator=create_operator_key(e2e_stack.database_url, "ops-fuzz"),
        target_agent_id=target["agentId"],
    )


def authorizations(creds: Credentials) -> st.SearchStrategy[dict[str, str]]:
    return st.sampled_from(
        [
            {},
            bearer(creds.agent),
            bearer(creds.operator),
            bearer("bw_agent_" + "x" * 43),
            bearer("bw_op_" + "y" * 43),
            {"authorization": "Bearer"},
            {"authorization": "Basic Zm9vOmJhcg=="},
            {"authorization": "bearer  " + creds.agent},
        ]
    )


# --- checks -------------------------------------------------------------------------------


def check_http(response: httpx.Response, sent: str) -> None:
    """Allowed status, a JSON body, no internals (unless the request itself carried them)."""
    where = f"{response.request.method} {str(response.request.url)[:300]}"
    assert response.status_code in ALLOWED_HTTP, (
        f"{where} -> {response.status_code}: {response.text[:500]}"
    )
    for marker in LEAK_MARKERS:
        if marker in response.text:
            assert marker in sent, f"{where} leaks {marker!r}: {response.text[:500]}"
    assert response.headers.get("content-type", "").startswith("application/json"), (
        f"{where} -> {response.status_code} {response.headers}: {response.text[:300]}"
    )
    body = json.loads(response.text)
    assert isinstance(body, dict)
    if response.status_code >= 400:
        assert isinstance(body.get("code"), int) and body["code"] != 0, body
        assert isinstance(body.get("message"), str), body


def request_text(*parts: str | bytes) -> str:
    return " ".join(p.decode("utf-8", "replace") if isinstance(p, bytes) else p for p in parts)


# --- JSON through Envoy -------------------------------------------------------------------


@pytest.mark.parametrize("route", [r for r in ROUTES if r.has_body], ids=lambda r: r.rpc)
def test_junk_bodies_never_break_a_route(
    fuzz_client: httpx.Client, creds: Credentials, route: Route
) -> None:
    @FUZZ
    @given(
        body=json_bodies(route),
        auth=authorizations(creds),
        content_type=st.sampled_from(
            ["application/json", "application/json", "application/json; charset=utf-8", None]
        ),
    )
    def run(body: bytes, auth: dict[str, str], content_type: str | None) -> None:
        path = route.path.replace("{agentId}", creds.target_agent_id)
        headers = dict(auth)
        if content_type:
            headers["content-type"] = content_type
        response = fuzz_client.request(route.method, path, content=body, headers=headers)
        check_http(response, request_text(path, body))

    run()


@pytest.mark.parametrize("route", [r for r in ROUTES if "{agentId}" in r.path], ids=lambda r: r.rpc)
def test_junk_agent_ids_never_break_a_route(
    fuzz_client: httpx.Client, creds: Credentials, route: Route
) -> None:
    @FUZZ
    @given(segment=path_segments, auth=authorizations(creds))
    def run(segment: str, auth: dict[str, str]) -> None:
        path = route.path.replace("{agentId}", segment)
        body = b"{}" if route.has_body else None
        response = fuzz_client.request(route.method, path, content=body, headers=auth)
        check_http(response, request_text(path, segment))

    run()


@pytest.mark.parametrize("route", [r for r in ROUTES if not r.has_body], ids=lambda r: r.rpc)
def test_junk_query_strings_never_break_a_read(
    fuzz_client: httpx.Client, creds: Credentials, route: Route
) -> None:
    @FUZZ
    @given(query=query_strings, auth=authorizations(creds))
    def run(query: str, auth: dict[str, str]) -> None:
        path = route.path.replace("{agentId}", creds.target_agent_id)
        url = f"{path}?{query}"
        response = fuzz_client.get(url, headers=auth)
        check_http(response, request_text(url, query))

    run()


# --- gRPC through Envoy ---------------------------------------------------------------------

_INT_RANGES = {
    pb_descriptor.FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    pb_descriptor.FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
}
proto_strings = (
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
    # Long ids are echoed clipped in errors, so even huge ones stay within metadata limits.
    | huge_texts
    | st.from_regex(r"[a-z0-9][a-z0-9_-]{1,20}[a-z0-9]", fullmatch=True)
)


def scalar_strategy(field: pb_descriptor.FieldDescriptor) -> st.SearchStrategy[Any]:
    kind = field.type
    if kind == pb_descriptor.FieldDescriptor.TYPE_STRING:
        return proto_strings
    if kind == pb_descriptor.FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind == pb_descriptor.FieldDescriptor.TYPE_ENUM:
        return st.integers(-3, 25)  # open enums: unknown numbers are legal on the wire
    if kind in _INT_RANGES:
        low, high = _INT_RANGES[kind]
        return st.integers(low, high) | st.integers(-5, 1005)
    if kind == pb_descriptor.FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=50)
    if kind == pb_descriptor.FieldDescriptor.TYPE_DOUBLE:
        return st.floats()
    raise AssertionError(f"no strategy for {field.full_name}")


@st.composite
def messages(draw: st.DrawFn, descriptor: pb_descriptor.Descriptor, depth: int = 0) -> Message:
    """A message of `descriptor` with random values in random subsets of its fields."""
    from google.protobuf import message_factory

    message = message_factory.GetMessageClass(descriptor)()
    for field in descriptor.fields:
        if not draw(st.booleans()):
            continue
        if field.type == pb_descriptor.FieldDescriptor.TYPE_MESSAGE:
            if depth > 2:
                continue
            if field.message_type.full_name == "google.protobuf.Timestamp":
                stamp = getattr(message, field.name)
                stamp.seconds = draw(
                    st.integers(-(2**40), 2**40) | st.integers(1_700_000_000, 1_900_000_000)
                )
                stamp.nanos = draw(st.integers(-(2**31), 2**31 - 1) | st.integers(0, 999))
                continue
            getattr(message, field.name).CopyFrom(draw(messages(field.message_type, depth + 1)))
        elif field.is_repeated:
            getattr(message, field.name).extend(draw(st.lists(scalar_strategy(field), max_size=7)))
        else:
            setattr(message, field.name, draw(scalar_strategy(field)))
    return message


def grpc_payloads(method: pb_descriptor.MethodDescriptor) -> st.SearchStrategy[bytes]:
    valid = messages(method.input_type).map(lambda m: m.SerializeToString())
    mutated = st.tuples(valid, st.binary(max_size=20), st.integers(0, 200)).map(
        lambda t: t[0][: t[2]] + t[1]
    )
    return valid | mutated | st.binary(max_size=200)


@pytest.mark.parametrize("path", sorted(GRPC_METHODS), ids=lambda p: p.rsplit("/", 1)[1])
def test_grpc_junk_never_internal_or_leaky(e2e_stack: Stack, creds: Credentials, path: str) -> None:
    method = GRPC_METHODS[path]
    with grpc.insecure_channel(e2e_stack.grpc_target) as channel:
        call = channel.unary_unary(path, request_serializer=None, response_deserializer=None)

        @FUZZ
        @given(payload=grpc_payloads(method), auth=authorizations(creds))
        def run(payload: bytes, auth: dict[str, str]) -> None:
            try:
                call(payload, metadata=tuple(auth.items()), timeout=15)
                return
            except grpc.RpcError as error:
                rich = unpack(error)  # type: ignore[arg-type]
            assert rich.code in ALLOWED_GRPC, f"{path}: {rich.code} {rich.message}"
            # Every service error carries an ErrorInfo with a stable reason.
            assert rich.domain == "agent.betterworld", (rich.code, rich.message)
            assert re.fullmatch(r"[A-Z][A-Z0-9_]*", rich.reason), rich.reason
            sent = request_text(payload)
            trailing = " ".join(f"{k}={v}" for k, v in rich.trailing.items())
            for marker in LEAK_MARKERS:
                for text in (rich.message, trailing):
                    if marker in text:
                        assert marker in sent, f"{path} leaks {marker!r}: {text[:300]}"

        run()
