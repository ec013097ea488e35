"""Humans over JSON through real Envoy: the product's original paths and status codes."""

from __future__ import annotations

import httpx
import pytest

from services.core.credentials import store as credentials
from services.core.credentials.keys import OPERATOR_KEY_PREFIX, generate_key
from tests.support.e2e_http import json_error
from tests.support.helpers import RunningService
from tests.support.humans import PASSWORD
from tests.support.mail import last_code

pytestmark = pytest.mark.e2e


async def test_register_verify_login_logout_over_json(
    mission_edge: tuple[RunningService, httpx.AsyncClient],
) -> None:
    service, http = mission_edge
    email = "json.human@example.org"
    created = await http.post(
        "/api/v1/human-auth/register",
        json={"email": email, "password": PASSWORD, "displayName": "Json Human"},
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert set(body) == {"userId", "email", "message"} and body["email"] == email

    early = await http.post("/api/v1/human-auth/login", json={"email": email, "password": PASSWORD})
    assert json_error(early, 403).reason == "EMAIL_NOT_VERIFIED"
    wrong = await http.post(
        "/api/v1/human-auth/login", json={"email": email, "password": "Wrong-Pass-42"}
    )
    assert json_error(wrong, 401).reason == "CREDENTIALS_INVALID"

    code = await last_code(service.runtime.engine, email)
    verified = await http.post(
        "/api/v1/human-auth/verify-email", json={"email": email, "code": code}
    )
    assert verified.status_code == 200, verified.text
    tokens = verified.json()
    assert tokens["expiresIn"] == 900 and tokens["user"]["emailVerified"] is True
    assert tokens["accessToken"] and tokens["refreshToken"]

    renewed = await http.post(
        "/api/v1/human-auth/refresh", json={"refreshToken": tokens["refreshToken"]}
    )
    assert renewed.status_code == 200, renewed.text
    auth = {"authorization": f"Bearer {renewed.json()['accessToken']}"}
    assert (await http.post("/api/v1/human-auth/logout", json={}, headers=auth)).status_code == 200
    after = await http.post("/api/v1/human-auth/logout", json={}, headers=auth)
    assert json_error(after, 401).reason == "SESSION_REVOKED"


async def test_bad_fields_are_named_and_operators_deactivate_by_path(
    mission_edge: tuple[RunningService, httpx.AsyncClient],
) -> None:
    service, http = mission_edge
    bad = await http.post(
        "/api/v1/human-auth/register",
        json={"email": "nope", "password": "short", "displayName": "Q"},
    )
    assert set(json_error(bad, 400).field_violations) == {"email", "password", "display_name"}

    email = "path.human@example.org"
    created = await http.post(
        "/api/v1/human-auth/register",
        json={"email": email, "password": PASSWORD, "displayName": "Path Human"},
    )
    human_id = created.json()["userId"]
    key = generate_key(OPERATOR_KEY_PREFIX)
    await credentials.create_operator(
        service.runtime.engine,
        name="ops-json",
        digest=key.digest,
        display_prefix=key.display_prefix,
    )
    operator = {"authorization": f"Bearer {key.plaintext}"}
    off = await http.post(
        f"/api/v1/admin/humans/{human_id}:deactivate", json={"reason": "test"}, headers=operator
    )
    assert off.status_code == 200 and off.json()["active"] is False, off.text
    listed = await http.get("/api/v1/admin/humans?limit=5", headers=operator)
    assert [h["humanId"] for h in listed.json()["data"]] == [human_id]
    # The registration window (3 in 5 minutes per IP): the two calls above, one more, then 429.
    third = await http.post(
        "/api/v1/human-auth/register",
        json={"email": "third@example.org", "password": PASSWORD, "displayName": "Third"},
    )
    assert third.status_code == 201
    limited = await http.post(
        "/api/v1/human-auth/register",
        json={"email": "late@example.org", "password": PASSWORD, "displayName": "Late"},
    )
    assert json_error(limited, 429).retry_delay
    assert limited.headers.get("retry-after")
