"""Request-scoped state (request id, principal, client IP, response headers) in ContextVars."""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class PrincipalKind(StrEnum):
    """Who is calling."""

    AGENT = "agent"
    HUMAN = "human"
    OPERATOR = "operator"
    INTERNAL = "internal"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller.

    `id` is the agent, human or operator id; `name` is the username, the human's email or the
    operator name (for logs and audit); `verified` matters only for agents; a human's
    `session_id` is the login session its access token belongs to.
    """

    kind: PrincipalKind
    id: str
    name: str
    verified: bool = False
    rate_limit_per_minute: int | None = None
    key_id: str = ""
    key_deprecated: bool = False
    created_at: datetime | None = None
    """When the agent registered (trust tier of the guardrail)."""
    session_id: str = ""


@dataclass
class RequestState:
    """Everything the runtime learns about one request while serving it."""

    request_id: str
    method: str = ""
    client_ip: str = ""
    principal: Principal | None = None
    response_headers: dict[str, str] = field(default_factory=dict)
    headers_sent: bool = False
    """True once a streaming response sent its headers (with its first message)."""


_state: ContextVar[RequestState | None] = ContextVar("betterworld_request", default=None)


def new_request_id() -> str:
    """A fresh request id (UUID4 hex)."""
    return uuid.uuid4().hex


def begin_request(request_id: str, method: str, client_ip: str) -> RequestState:
    """Starts request-scoped state for the current task."""
    state = RequestState(request_id=request_id, method=method, client_ip=client_ip)
    _state.set(state)
    return state


def current() -> RequestState | None:
    """The current request's state, or None outside a request."""
    return _state.get()


def current_request_id() -> str | None:
    """The current request id, for log lines."""
    state = _state.get()
    return state.request_id if state else None


def current_principal() -> Principal | None:
    """The authenticated caller of the current request, if any."""
    state = _state.get()
    return state.principal if state else None


def caller() -> Principal:
    """The authenticated caller, in an RPC whose access policy requires one."""
    principal = current_principal()
    assert principal is not None, "the access policy guarantees a principal here"
    return principal


def set_response_header(name: str, value: str) -> None:
    """Adds a header (gRPC metadata) to the current response, success or error."""
    state = _state.get()
    if state is not None:
        state.response_headers[name.lower()] = value


async def send_stream_headers(context: Any) -> None:
    """Sends a streaming response's headers now, before its first message: a client waiting
    for the stream to open (and Envoy, answering HTTP 200) need not wait for an event. Headers
    set afterwards are not sent."""
    state = _state.get()
    if state is not None and not state.headers_sent:
        state.headers_sent = True
        await context.send_initial_metadata(tuple(state.response_headers.items()))
