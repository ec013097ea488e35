"""What e2e tests look at in responses: error bodies, details, headers, leaks."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

REGISTER = "/api/v1/auth/agents/register"
ME = "/api/v1/agents/me"
DOMAIN = "agent.betterworld"
TYPE_PREFIX = "type.googleapis.com/google.rpc."

# Text that must never reach a client: Python internals, driver names, stack frames.
LEAK_MARKERS = ("Traceback", "Exception", "sqlalchemy", "asyncpg", "psycopg", 'File "')


def unique(prefix: str) -> str:
    """A valid, unique username."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def register(client: httpx.Client, prefix: str = "e2e", **fields: Any) -> dict[str, Any]:
    """Registers through Envoy (201 expected); the body plus `auth` headers for the new key."""
    body = {
        "username": unique(prefix),
        "framework": "langchain",
        "specializations": ["food_security"],
        **fields,
    }
    response = client.post(REGISTER, json=body)
    assert response.status_code == 201, response.text
    out: dict[str, Any] = response.json()
    out["auth"] = bearer(out["apiKey"])
    return out


def assert_no_leak(text: str) -> None:
    """No Python traceback, exception class or driver name in a response."""
    for marker in LEAK_MARKERS:
        assert marker not in text, f"response leaks {marker!r}: {text[:500]}"


@dataclass
class JsonError:
    """A transcoded google.rpc.Status as a web client receives it."""

    status: int
    code: int
    message: str
    details: list[dict[str, Any]]
    reason: str = ""
    domain: str = ""
    error_metadata: dict[str, str] = field(default_factory=dict)
    field_violations: dict[str, str] = field(default_factory=dict)
    retry_delay: str | None = None
    quota_subjects: list[str] = field(default_factory=list)
    resource: tuple[str, str] | None = None

    def detail_types(self) -> list[str]:
        return [d.get("@type", "").removeprefix(TYPE_PREFIX) for d in self.details]


def json_error(response: httpx.Response, status: int) -> JsonError:
    """Asserts the HTTP status and a JSON Status body; unpacks the rich details."""
    assert response.status_code == status, f"{response.status_code}: {response.text[:500]}"
    assert response.headers.get("content-type", "").startswith("application/json"), response.headers
    assert_no_leak(response.text)
    body = json.loads(response.text)
    assert isinstance(body, dict), body
    assert isinstance(body.get("code"), int) and body["code"] != 0, body
    assert isinstance(body.get("message"), str), body
    details = body.get("details")
    assert isinstance(details, list), body
    error = JsonError(status, body["code"], body["message"], details)
    for detail in details:
        kind = detail.get("@type", "").removeprefix(TYPE_PREFIX)
        if kind == "ErrorInfo":
            error.reason, error.domain = detail["reason"], detail["domain"]
            error.error_metadata = detail.get("metadata", {})
        elif kind == "BadRequest":
            error.field_violations = {
                v["field"]: v["description"] for v in detail.get("fieldViolations", [])
            }
        elif kind == "RetryInfo":
            error.retry_delay = detail["retryDelay"]
        elif kind == "QuotaFailure":
            error.quota_subjects = [v["subject"] for v in detail.get("violations", [])]
        elif kind == "ResourceInfo":
            error.resource = (detail["resourceType"], detail["resourceName"])
    return error


def service_error(response: httpx.Response, status: int, reason: str) -> JsonError:
    """A service error: JSON Status with an ErrorInfo of the agent service's domain."""
    error = json_error(response, status)
    assert (error.reason, error.domain) == (reason, DOMAIN), error
    assert error.detail_types()[0] == "ErrorInfo", error
    request_id = response.headers.get("x-request-id")
    assert request_id and error.error_metadata.get("requestId") == request_id, error
    return error


def seconds(duration: str) -> float:
    """A JSON google.protobuf.Duration ("1.5s") in seconds."""
    assert duration.endswith("s"), duration
    return float(duration[:-1])
