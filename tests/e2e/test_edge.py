"""What Envoy itself answers: /health, /ready, CORS for browsers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.support.e2e_http import ME, REGISTER, unique
from tests.support.e2e_stack import ALLOWED_ORIGIN

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

NewAgent = Callable[..., dict[str, Any]]
DISALLOWED_ORIGIN = "https://evil.example"


def test_health_is_200_when_every_upstream_is_healthy(http: httpx.Client) -> None:
    response = http.get("/health")
    assert response.status_code == 200
    assert response.text == ""


def test_ready_reports_each_dependency(http: httpx.Client) -> None:
    response = http.get("/ready")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    ready = response.json()
    assert set(ready) == {"ready", "service", "version", "uptimeSeconds", "checks"}
    assert ready["ready"] is True
    assert ready["service"] == "agent"
    assert ready["version"] and ready["version"][0].isdigit()
    assert ready["uptimeSeconds"] > 0
    checks = {check["name"]: check for check in ready["checks"]}
    assert set(checks) == {"database", "redis"}
    for check in checks.values():
        assert check["ok"] is True
        assert check["latencyMs"] >= 0
        assert check["error"] == ""
    later = http.get("/ready").json()
    assert later["uptimeSeconds"] >= ready["uptimeSeconds"]


def test_cors_preflight_from_an_allowed_origin(http: httpx.Client) -> None:
    response = http.options(
        ME,
        headers={
            "origin": ALLOWED_ORIGIN,
            "access-control-request-method": "PATCH",
            "access-control-request-headers": "authorization,content-type",
        },
    )
    assert response.status_code in (200, 204)
    assert response.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    methods = {m.strip() for m in response.headers["access-control-allow-methods"].split(",")}
    assert {"GET", "POST", "PATCH", "PUT"} <= methods
    allowed_headers = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed_headers and "content-type" in allowed_headers
    assert int(response.headers["access-control-max-age"]) > 0


def test_cors_preflight_from_another_origin_gets_no_allow_origin(http: httpx.Client) -> None:
    response = http.options(
        ME,
        headers={"origin": DISALLOWED_ORIGIN, "access-control-request-method": "PATCH"},
    )
    assert "access-control-allow-origin" not in response.headers
    assert DISALLOWED_ORIGIN not in response.text
    # The browser then never sends the real request; if it did, no CORS header lets it read.
    actual = http.get("/api/v1/agents", params={"limit": 1}, headers={"origin": DISALLOWED_ORIGIN})
    assert "access-control-allow-origin" not in actual.headers


def test_cors_actual_request_exposes_rate_limit_headers(
    http: httpx.Client, new_agent: NewAgent
) -> None:
    agent = new_agent("cors")
    response = http.get(ME, headers={**agent["auth"], "origin": ALLOWED_ORIGIN})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    exposed = {
        h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")
    }
    assert {
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
        "x-request-id",
        "retry-after",
    } <= exposed
    assert "x-ratelimit-remaining" in response.headers

    # The 201 of a registration from a browser carries the same headers.
    created = http.post(
        REGISTER,
        json={"username": unique("cors"), "framework": "custom", "specializations": ["elder_care"]},
        headers={"origin": ALLOWED_ORIGIN},
    )
    assert created.status_code == 201
    assert created.headers["access-control-allow-origin"] == ALLOWED_ORIGIN

    # Error responses too (the service's and Envoy's own), or a browser app could not read
    # why it failed.
    failed = http.get(ME, headers={"origin": ALLOWED_ORIGIN})
    assert failed.status_code == 401
    assert failed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    malformed = http.post(
        REGISTER,
        content=b"{not json",
        headers={"origin": ALLOWED_ORIGIN, "content-type": "application/json"},
    )
    assert malformed.status_code == 400
    assert malformed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
