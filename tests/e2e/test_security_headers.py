"""Envoy adds the security headers to every response: successes, service errors, its own local
replies (unknown path, body too large) and streams."""

from __future__ import annotations

import httpx
import pytest

from tests.support.helpers import RunningService
from tooling.edge.envoy_config import SECURITY_HEADERS

pytestmark = pytest.mark.e2e


async def test_every_response_carries_the_security_headers(
    mission_edge: tuple[RunningService, httpx.AsyncClient],
) -> None:
    _, http = mission_edge
    responses = {
        "ok": await http.get("/api/v1/missions/nearby?lat=37.77&lng=-122.42"),
        "unauthenticated": await http.get("/api/v1/tokens/balance"),
        "unknown path": await http.get("/api/v1/nowhere"),
        "too large": await http.post(
            "/api/v1/tokens/spend",
            content=b"{" + b" " * (2 * 1024 * 1024) + b"}",
            headers={"content-type": "application/json"},
        ),
    }
    assert [r.status_code for r in responses.values()] == [200, 401, 404, 413]
    for what, response in responses.items():
        for name, value in SECURITY_HEADERS.items():
            assert response.headers.get(name) == value, (what, name, dict(response.headers))
    async with http.stream("GET", "/api/v1/events") as events:
        assert events.headers["content-type"] == "text/event-stream"
        assert events.headers["x-content-type-options"] == "nosniff"
