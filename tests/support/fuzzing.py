"""Property-based request generation for gRPC fuzz tests: junk that is still sendable."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

import grpc
from google.protobuf import descriptor
from google.protobuf.message import Message
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

FORBIDDEN_CODES = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}
LEAK_MARKERS = ("Traceback", "Error(", "sqlalchemy", "asyncpg", 'File "', "Exception")

TEXT = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=0, max_size=3000),
    st.sampled_from(["", "admin", "00000000-0000-0000-0000-000000000000", "a" * 101, "\x00"]),
)
INTS = st.one_of(st.integers(-(2**31), 2**31 - 1), st.sampled_from([0, -1, 1, 101, 1001]))


def field_value(field: descriptor.FieldDescriptor) -> st.SearchStrategy[object]:
    kinds = descriptor.FieldDescriptor
    if field.type == kinds.TYPE_STRING:
        return TEXT
    if field.type == kinds.TYPE_BOOL:
        return st.booleans()
    if field.type == kinds.TYPE_ENUM:
        return INTS  # open enums: unknown numbers reach the server
    if field.type in (kinds.TYPE_INT32, kinds.TYPE_INT64, kinds.TYPE_UINT32):
        return INTS
    if field.type in (kinds.TYPE_DOUBLE, kinds.TYPE_FLOAT):
        return st.floats(allow_nan=True, allow_infinity=True, width=32)
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
                f.name: field_value(f)
                for f in field.message_type.fields
                if f.type != kinds.TYPE_MESSAGE
            },
        )
    return st.none()


def build(message_cls: type[Message], values: dict[str, object]) -> bytes:
    message = message_cls()
    for name, value in values.items():
        field = message_cls.DESCRIPTOR.fields_by_name[name]
        try:
            is_message = field.type == descriptor.FieldDescriptor.TYPE_MESSAGE
            if field.is_repeated and is_message:
                for item in value if isinstance(value, list) else [value]:
                    _fill(getattr(message, name).add(), item)
            elif field.is_repeated:
                getattr(message, name).extend(value if isinstance(value, list) else [value])
            elif is_message:
                _fill(getattr(message, name), value)
            else:
                setattr(message, name, value)
        except (ValueError, TypeError):
            continue  # a value the message type cannot hold is not sendable anyway
    return message.SerializeToString()


def _fill(message: Message, values: object) -> None:
    """Sets the scalar fields of a nested message; values it cannot hold are skipped."""
    for key, item in dict(values).items():  # type: ignore[call-overload]
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            setattr(message, key, item)


def request_strategy(message_cls: type[Message]) -> st.SearchStrategy[bytes]:
    fields = message_cls.DESCRIPTOR.fields
    structured = st.fixed_dictionaries(
        {},
        optional={
            f.name: (st.lists(field_value(f), max_size=7) if f.is_repeated else field_value(f))
            for f in fields
        },
    ).map(lambda values: build(message_cls, values))
    return st.one_of(structured, st.binary(max_size=200))


def assert_clean(error: grpc.aio.AioRpcError, payload: bytes = b"") -> None:
    """No forbidden status and no internals in the details. A marker the request itself carried
    is not a leak: "problem sqlalchemy.url not found" names the id the client sent (Hypothesis
    draws strings from constants in the code, so it does send such ids)."""
    assert error.code() not in FORBIDDEN_CODES, error.details()
    for marker in LEAK_MARKERS:
        if marker.encode() in payload:
            continue
        assert marker not in (error.details() or ""), error.details()


def streaming_kind(method: descriptor.MethodDescriptor) -> str:
    """How `send_junk` must call the method: "", "server" or "client"."""
    if method.server_streaming:
        return "server"
    return "client" if method.client_streaming else ""


def methods_of(descriptors: Sequence[object]) -> list[tuple[str, descriptor.MethodDescriptor]]:
    """(service full name, method) of every RPC of the given service descriptors."""
    return [
        (service.full_name, method)  # type: ignore[attr-defined]
        for service in descriptors
        for method in service.methods  # type: ignore[attr-defined]
    ]


def _caller(channel: grpc.aio.Channel, path: str, streaming: str) -> Any:
    """A callable sending one serialized request to `path` and waiting for the answer.
    `streaming`: "" (unary), "server" (the stream is read for up to 0.5 s: a feed never ends)
    or "client" (the request is the stream's only message)."""
    raw: dict[str, Any] = {
        "request_serializer": lambda data: data,
        "response_deserializer": lambda data: data,
    }
    if streaming == "client":
        upload = channel.stream_unary(path, **raw)

        async def send_one(payload: bytes, **kwargs: Any) -> Any:
            async def one() -> Any:
                yield payload

            return await upload(one(), **kwargs)

        return send_one
    if streaming == "server":
        stream = channel.unary_stream(path, **raw)

        async def read_some(payload: bytes, **kwargs: Any) -> None:
            call = stream(payload, **kwargs)
            try:
                async with asyncio.timeout(0.5):
                    async for _ in call:
                        pass
            except TimeoutError:
                call.cancel()

        return read_some
    return channel.unary_unary(path, **raw)


async def send_junk(
    channel: grpc.aio.Channel,
    path: str,
    request_cls: type[Message],
    credentials: Sequence[Sequence[tuple[str, str]]],
    *,
    examples: int = 40,
    streaming: str = "",
) -> list[grpc.StatusCode]:
    """Sends generated requests with each credential choice; asserts every error is clean."""
    call = _caller(channel, path, streaming)
    # Hypothesis cannot drive a coroutine here, so it generates the cases and the loop sends them.
    cases: list[tuple[bytes, int]] = []

    @hypothesis_settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(payload=request_strategy(request_cls), which=st.integers(0, len(credentials) - 1))
    def generate(payload: bytes, which: int) -> None:
        cases.append((payload, which))

    generate()
    codes = []
    for payload, which in cases:
        try:
            await call(payload, metadata=tuple(credentials[which]), timeout=10)
            codes.append(grpc.StatusCode.OK)
        except grpc.aio.AioRpcError as error:
            assert_clean(error, payload)
            codes.append(error.code())
    return codes
