"""Property-based junk against every agent RPC over gRPC: never INTERNAL/UNKNOWN, never a leak."""

from __future__ import annotations

import contextlib

import grpc
import pytest
from betterworld.agent.v1 import agent_pb2
from google.protobuf import descriptor
from google.protobuf.message import Message
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from services.agent.service import DEFINITION
from services.core.settings import Settings
from tests.helpers import RunningService, bearer
from tests.integration.conftest import register

_FORBIDDEN_CODES = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}
_LEAK_MARKERS = ("Traceback", "Error(", "sqlalchemy", "asyncpg", 'File "', "Exception")
_METHODS = [
    (descriptor_.full_name, method)
    for descriptor_ in DEFINITION.descriptors
    for method in descriptor_.methods  # type: ignore[attr-defined]
]

_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=0, max_size=3000),
    st.sampled_from(["", "admin", "00000000-0000-0000-0000-000000000000", "a" * 101, "\x00"]),
)
_ints = st.one_of(st.integers(-(2**31), 2**31 - 1), st.sampled_from([0, -1, 1, 101, 1001]))


def _value(field: descriptor.FieldDescriptor) -> st.SearchStrategy[object]:
    kinds = descriptor.FieldDescriptor
    if field.type == kinds.TYPE_STRING:
        return _text
    if field.type == kinds.TYPE_BOOL:
        return st.booleans()
    if field.type == kinds.TYPE_ENUM:
        return _ints  # open enums: unknown numbers reach the server
    if field.type in (kinds.TYPE_INT32, kinds.TYPE_INT64, kinds.TYPE_UINT32):
        return _ints
    if field.type == kinds.TYPE_BYTES:
        return st.binary(max_size=64)
    if field.type == kinds.TYPE_MESSAGE:
        if field.message_type.full_name == "google.protobuf.Timestamp":
            return st.builds(
                lambda s, n: {"seconds": s, "nanos": n},
                st.integers(-(2**40), 2**40),
                st.integers(0, 999_999_999),
            )
        return st.fixed_dictionaries(
            {},
            optional={
                f.name: _value(f) for f in field.message_type.fields if f.type != kinds.TYPE_MESSAGE
            },
        )
    return st.none()


def _build(message_cls: type[Message], values: dict[str, object]) -> bytes:
    message = message_cls()
    for name, value in values.items():
        field = message_cls.DESCRIPTOR.fields_by_name[name]
        try:
            if field.is_repeated:
                getattr(message, name).extend(value if isinstance(value, list) else [value])
            elif field.type == descriptor.FieldDescriptor.TYPE_MESSAGE:
                sub = getattr(message, name)
                for key, item in dict(value).items():  # type: ignore[call-overload]
                    with contextlib.suppress(ValueError, TypeError):
                        setattr(sub, key, item)
            else:
                setattr(message, name, value)
        except (ValueError, TypeError):
            continue  # a value the message type cannot hold is not sendable anyway
    return message.SerializeToString()


def _request_strategy(message_cls: type[Message]) -> st.SearchStrategy[bytes]:
    fields = message_cls.DESCRIPTOR.fields
    structured = st.fixed_dictionaries(
        {},
        optional={
            f.name: (st.lists(_value(f), max_size=7) if f.is_repeated else _value(f))
            for f in fields
        },
    ).map(lambda values: _build(message_cls, values))
    return st.one_of(structured, st.binary(max_size=200))


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Limits out of the way, so junk reaches validation instead of stopping at a 429."""
    return settings.model_copy(
        update={
            "rate_limit_auth_per_ip": 1_000_000,
            "rate_limit_public_per_ip": 1_000_000,
            "rate_limit_agent_pending": 1_000_000,
        }
    )


def _assert_clean(error: grpc.aio.AioRpcError) -> None:
    assert error.code() not in _FORBIDDEN_CODES, error.details()
    for marker in _LEAK_MARKERS:
        assert marker not in (error.details() or ""), error.details()


@pytest.mark.parametrize(("service_name", "method"), _METHODS, ids=lambda m: getattr(m, "name", m))
async def test_generated_junk_never_causes_internal_errors(
    agent_service: RunningService, service_name: str, method: descriptor.MethodDescriptor
) -> None:
    registered = await register(agent_service, "fuzz-target")
    request_cls = getattr(agent_pb2, method.input_type.name)
    call = agent_service.channel.unary_unary(
        f"/{service_name}/{method.name}",
        request_serializer=lambda data: data,
        response_deserializer=lambda data: data,
    )
    credentials = [(), bearer(registered.api_key), bearer("bw_agent_junk-key-000000000000")]

    # Hypothesis cannot drive a coroutine here, so it generates the cases and the loop sends them.
    cases: list[tuple[bytes, int]] = []

    @hypothesis_settings(
        max_examples=40,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(payload=_request_strategy(request_cls), which=st.integers(0, 2))
    def generate(payload: bytes, which: int) -> None:
        cases.append((payload, which))

    generate()
    codes = []
    for payload, which in cases:
        try:
            await call(payload, metadata=credentials[which], timeout=10)
            codes.append(grpc.StatusCode.OK)
        except grpc.aio.AioRpcError as error:
            _assert_clean(error)
            codes.append(error.code())
    assert grpc.StatusCode.RESOURCE_EXHAUSTED not in codes
