"""Transport conversions every servicer needs: timestamps, enum names, domains, JSON bodies."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from betterworld.common.v1 import common_pb2
from google.api import httpbody_pb2
from google.protobuf import json_format, timestamp_pb2
from google.protobuf.message import Message

from services.core import errors
from services.core.pagination import Page


def timestamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    """A Timestamp, or None (the field stays unset)."""
    if value is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)
    return stamp


def datetime_field(message: Any, name: str) -> datetime | None:
    """A request's Timestamp field as an aware datetime; None when not sent; INVALID_ARGUMENT
    naming the field when it is out of range."""
    if not message.HasField(name):
        return None
    try:
        value: datetime = getattr(message, name).ToDatetime(tzinfo=UTC)
        return value
    except (ValueError, OverflowError, OSError):
        raise errors.InvalidArgument.one(name, "is not a valid timestamp") from None


def json_body(message: Message) -> httpbody_pb2.HttpBody:
    """`message` as the HTTP API's JSON body, printed as the edge's transcoder prints responses.

    The proto3 JSON mapping with the transcoder's print options (tooling/edge/envoy_config.py):
    camelCase names, enum names, fields without presence printed even when empty, no
    whitespace. For RPCs whose HTTP binding returns google.api.HttpBody.
    """
    fields = json_format.MessageToDict(message, always_print_fields_with_no_presence=True)
    data = json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()
    return httpbody_pb2.HttpBody(content_type="application/json", data=data)


def enum_name(enum: Any, value: int) -> str:
    """Upper-case enum value name; "" for the zero value or numbers this server does not know."""
    try:
        name: str = enum.Name(value)
    except ValueError:
        return ""
    return "" if name.endswith("_UNSPECIFIED") else name


def known_enum_name(enum: Any, value: int, field: str) -> str:
    """The lower-case name of a request's enum value; "" when unset; INVALID_ARGUMENT naming
    `field` for a number the enum does not define."""
    name = enum_name(enum, value).lower()
    if value and not name:
        raise errors.InvalidArgument.one(field, "is not a known value")
    return name


def domain_name(value: int) -> str:
    """The stored (lower-case) domain name; "" when unset or unknown."""
    return enum_name(common_pb2.Domain, value).lower()


def domain_value(name: str | None) -> Any:
    """The Domain enum value of a stored name (0 when none)."""
    return common_pb2.Domain.Value(name.upper()) if name else 0


def status_value(name: str | None) -> Any:
    """The GuardrailStatus enum value of a stored status (0 when none)."""
    return common_pb2.GuardrailStatus.Value(name) if name else 0


def content_kind_name(value: int) -> str:
    """The stored (lower-case) name of a content kind: problem, solution or debate; "" when
    unset or unknown. Takes `common.v1.ContentKind` and the deprecated per-service enums, which
    share its numbers."""
    return enum_name(common_pb2.ContentKind, value).lower()


def content_kind_value(name: str) -> Any:
    """The ContentKind number of a stored kind name (0 when unknown)."""
    try:
        return common_pb2.ContentKind.Value(name.upper())
    except ValueError:
        return 0


def page_meta(page: Page) -> common_pb2.PageMeta:
    """The PageMeta of a page."""
    return common_pb2.PageMeta(
        next_cursor=page.next_cursor, has_more=page.has_more, limit=page.limit
    )
