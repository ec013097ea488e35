"""Humans' profiles over JSON through real Envoy: 201 on create, lowerCamelCase fields, PATCH
changing only what is sent, and errors as web clients see them."""

from __future__ import annotations

import httpx
import pytest

from tests.support.e2e_http import json_error
from tests.support.helpers import RunningService
from tests.support.humans import PASSWORD
from tests.support.mail import last_code

pytestmark = pytest.mark.e2e

# The acceptance flow's body, exactly.
OAKLAND = {
    "skills": ["data_collection"],
    "languages": ["en"],
    "city": "Oakland",
    "country": "US",
    "latitude": 37.80,
    "longitude": -122.27,
    "serviceRadiusKm": 20,
}


async def _human(service: RunningService, http: httpx.AsyncClient, email: str) -> dict[str, str]:
    """Registers and verifies a human over JSON; their bearer header."""
    created = await http.post(
        "/api/v1/human-auth/register",
        json={"email": email, "password": PASSWORD, "displayName": "Profile Human"},
    )
    assert created.status_code == 201, created.text
    code = await last_code(service.runtime.engine, email)
    verified = await http.post(
        "/api/v1/human-auth/verify-email", json={"email": email, "code": code}
    )
    assert verified.status_code == 200, verified.text
    return {"authorization": f"Bearer {verified.json()['accessToken']}"}


async def test_create_patch_and_get_a_profile_over_json(
    mission_edge: tuple[RunningService, httpx.AsyncClient],
) -> None:
    service, http = mission_edge
    auth = await _human(service, http, "profile.json@example.org")

    missing = await http.get("/api/v1/profile", headers=auth)
    assert json_error(missing, 404).reason == "PROFILE_NOT_FOUND"

    created = await http.post("/api/v1/profile", json=OAKLAND, headers=auth)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["serviceRadiusKm"] == 20 and body["humanId"]
    assert (body["latitude"], body["longitude"]) == (37.80, -122.27)
    assert body["skills"] == ["data_collection"] and body["languages"] == ["en"]
    assert body["completeness"] == 70 and "availability" not in body
    assert "Add your location so nearby missions can find you" not in body["suggestions"]
    assert len(body["suggestions"]) == 2
    assert {"createdAt", "updatedAt", "city", "country", "bio"} <= set(body)

    again = await http.post("/api/v1/profile", json=OAKLAND, headers=auth)
    assert json_error(again, 409).reason == "PROFILE_EXISTS"

    patched = await http.patch(
        "/api/v1/profile",
        json={
            "bio": "Weekend birder.",
            "availability": {"weekends": True, "timezone": "America/Los_Angeles"},
            "clearLocation": True,
        },
        headers=auth,
    )
    assert patched.status_code == 200, patched.text
    changed = patched.json()
    assert changed["bio"] == "Weekend birder." and changed["city"] == "Oakland"
    assert changed["availability"] == {
        "weekdays": False,
        "weekends": True,
        "timezone": "America/Los_Angeles",
    }
    assert "latitude" not in changed and "longitude" not in changed
    assert changed["completeness"] == 100 - 20
    assert changed["suggestions"] == ["Add your location so nearby missions can find you"]

    fetched = await http.get("/api/v1/profile", headers=auth)
    assert fetched.status_code == 200 and fetched.json() == changed


async def test_bad_fields_and_callers_over_json(
    mission_edge: tuple[RunningService, httpx.AsyncClient],
) -> None:
    service, http = mission_edge
    auth = await _human(service, http, "profile.bad@example.org")
    bad = await http.post(
        "/api/v1/profile",
        json={
            "skills": ["ok"],
            "languages": ["xx"],
            "country": "USA",
            "latitude": 37.8,
            "serviceRadiusKm": 51,
            "availability": {"timezone": "Mars/Base"},
        },
        headers=auth,
    )
    assert set(json_error(bad, 400).field_violations) == {
        "languages",
        "country",
        "longitude",
        "service_radius_km",
        "availability.timezone",
    }
    anonymous = await http.post("/api/v1/profile", json=OAKLAND)
    assert json_error(anonymous, 401).reason == "TOKEN_MISSING"
