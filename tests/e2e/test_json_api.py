"""The JSON API as a web client sees it through Envoy: 201, camelCase, headers, pages, enums."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.support.e2e_http import ME, REGISTER, assert_no_leak, bearer, unique
from tests.support.e2e_stack import PENDING_AGENT_LIMIT

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

NewAgent = Callable[..., dict[str, Any]]


def test_register_answers_201_with_the_key_in_camel_case(http: httpx.Client) -> None:
    username = unique("reg")
    response = http.post(
        REGISTER,
        json={
            "username": username,
            "framework": "langchain",
            "specializations": ["food_security"],
            "displayName": "Registered Through Envoy",
            "modelProvider": "anthropic",
        },
    )
    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"agentId", "apiKey", "username"}
    assert body["username"] == username
    assert body["apiKey"].startswith("bw_agent_") and len(body["apiKey"]) > 40
    # The marker that made it a 201, and the gRPC trailers, stay inside the mesh.
    for internal in ("x-http-status", "grpc-status", "grpc-message"):
        assert internal not in response.headers
    me = http.get(ME, headers=bearer(body["apiKey"]))
    assert me.status_code == 200
    assert me.json()["agentId"] == body["agentId"]


def test_get_me_returns_the_private_profile_with_request_id_and_limit_headers(
    http: httpx.Client, new_agent: NewAgent
) -> None:
    agent = new_agent("me", email="me-owner@example.org", soulSummary="helps")
    request_id = f"e2e-{unique('rid')}"
    response = http.get(ME, headers={**agent["auth"], "x-request-id": request_id})
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"] == request_id
    limit = int(response.headers["x-ratelimit-limit"])
    remaining = int(response.headers["x-ratelimit-remaining"])
    reset = int(response.headers["x-ratelimit-reset"])
    assert limit == PENDING_AGENT_LIMIT
    assert 0 <= remaining < limit
    assert 0 <= reset <= 60
    me = response.json()
    assert me["agentId"] == agent["agentId"]
    assert me["username"] == agent["username"]
    assert me["email"] == "me-owner@example.org"
    assert me["framework"] == "LANGCHAIN"
    assert me["specializations"] == ["FOOD_SECURITY"]
    assert me["soulSummary"] == "helps"
    assert me["claimStatus"] == "PENDING"
    assert me["isActive"] is True
    assert me["rateLimitPerMinute"] == PENDING_AGENT_LIMIT
    assert me["createdAt"].endswith("Z")
    assert "apiKey" not in me and agent["apiKey"] not in response.text

    # Without a client id Envoy makes one, and the service echoes it.
    generated = http.get(ME, headers=agent["auth"]).headers["x-request-id"]
    assert generated and generated != request_id


def test_update_me_changes_only_the_fields_sent(http: httpx.Client, new_agent: NewAgent) -> None:
    agent = new_agent(
        "upd",
        displayName="Before",
        soulSummary="original soul",
        modelName="model-1",
        email="upd@example.org",
    )
    before = http.get(ME, headers=agent["auth"]).json()

    response = http.patch(ME, headers=agent["auth"], json={"displayName": "After"})
    assert response.status_code == 200, response.text
    after = response.json()
    assert after["displayName"] == "After"
    unchanged = ("soulSummary", "modelName", "email", "specializations", "framework", "username")
    assert {k: after[k] for k in unchanged} == {k: before[k] for k in unchanged}
    assert after["updatedAt"] > before["updatedAt"]

    response = http.patch(
        ME,
        headers=agent["auth"],
        json={"specializations": ["education_access", "HUMAN_RIGHTS"], "modelName": ""},
    )
    assert response.status_code == 200, response.text
    again = http.get(ME, headers=agent["auth"]).json()
    assert again["specializations"] == ["EDUCATION_ACCESS", "HUMAN_RIGHTS"]
    assert again["modelName"] == ""
    assert again["displayName"] == "After"
    assert again["soulSummary"] == "original soul"


def test_rotated_key_keeps_working_and_is_marked_deprecated(
    http: httpx.Client, new_agent: NewAgent
) -> None:
    agent = new_agent("rot")
    response = http.post("/api/v1/auth/agents/rotate-key", headers=agent["auth"], json={})
    assert response.status_code == 200, response.text
    rotated = response.json()
    assert set(rotated) == {"apiKey", "previousKeyExpiresAt"}
    assert rotated["apiKey"].startswith("bw_agent_") and rotated["apiKey"] != agent["apiKey"]

    old = http.get(ME, headers=agent["auth"])
    assert old.status_code == 200
    assert old.headers["x-bw-key-deprecated"] == "true"
    new = http.get(ME, headers=bearer(rotated["apiKey"]))
    assert new.status_code == 200
    assert "x-bw-key-deprecated" not in new.headers
    assert new.json()["agentId"] == old.json()["agentId"] == agent["agentId"]


def test_public_profile_has_no_email_or_key_data(http: httpx.Client, new_agent: NewAgent) -> None:
    agent = new_agent("pub", email="private-address@example.org", displayName="Public Face")
    response = http.get(f"/api/v1/agents/{agent['agentId']}")
    assert response.status_code == 200, response.text
    profile = response.json()
    assert profile["agentId"] == agent["agentId"]
    assert profile["username"] == agent["username"]
    assert profile["displayName"] == "Public Face"
    assert profile["framework"] == "LANGCHAIN"
    for private in ("email", "apiKey", "rateLimitPerMinute", "lastHeartbeatAt", "updatedAt"):
        assert private not in profile
    assert "private-address" not in response.text
    assert agent["apiKey"] not in response.text


def test_list_agents_walks_every_page_with_cursors(http: httpx.Client, new_agent: NewAgent) -> None:
    # A filter no other e2e test registers with, so the walk is short; others may still match.
    mine = [
        new_agent("page", framework="autogen", specializations=["elder_care", "human_rights"])[
            "agentId"
        ]
        for _ in range(5)
    ]
    query: dict[str, Any] = {"limit": 2, "framework": "AUTOGEN", "specialization": "elder_care"}
    seen: list[str] = []
    pages = 0
    while True:
        response = http.get("/api/v1/agents", params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        pages += 1
        assert set(page) == {"data", "meta"}
        meta = page["meta"]
        assert meta["limit"] == 2
        assert len(page["data"]) <= 2
        assert meta["hasMore"] == bool(meta["nextCursor"])
        for profile in page["data"]:
            assert profile["framework"] == "AUTOGEN"
            assert "ELDER_CARE" in profile["specializations"]
            assert "email" not in profile
        seen += [profile["agentId"] for profile in page["data"]]
        if not meta["hasMore"]:
            assert len(page["data"]) >= 1 or pages == 1
            break
        assert len(page["data"]) == 2
        query["cursor"] = meta["nextCursor"]
        assert pages < 100, "pagination does not end"
    assert len(seen) == len(set(seen)), "an agent appeared on two pages"
    assert pages >= 3
    # Newest first: my agents in reverse registration order, none missing.
    assert [a for a in seen if a in mine] == list(reversed(mine))

    # A cursor is bound to its query: reusing one with another filter is a client error.
    first = http.get("/api/v1/agents", params={"limit": 2, "framework": "autogen"}).json()
    if first["meta"]["hasMore"]:
        other = http.get(
            "/api/v1/agents",
            params={"limit": 2, "framework": "crewai", "cursor": first["meta"]["nextCursor"]},
        )
        assert other.status_code == 400
        assert_no_leak(other.text)


@pytest.mark.parametrize(
    ("framework", "specializations", "shown_framework", "shown_specializations"),
    [
        ("langchain", ["food_security"], "LANGCHAIN", ["FOOD_SECURITY"]),
        ("CrewAI", ["Clean_Water_Sanitation", "gender_equality"], "CREWAI", None),
        ("OPENCLAW", ["ENVIRONMENTAL_PROTECTION"], "OPENCLAW", ["ENVIRONMENTAL_PROTECTION"]),
    ],
)
def test_enum_names_are_case_insensitive(
    http: httpx.Client,
    framework: str,
    specializations: list[str],
    shown_framework: str,
    shown_specializations: list[str] | None,
) -> None:
    response = http.post(
        REGISTER,
        json={
            "username": unique("enum"),
            "framework": framework,
            "specializations": specializations,
        },
    )
    assert response.status_code == 201, response.text
    me = http.get(ME, headers=bearer(response.json()["apiKey"])).json()
    assert me["framework"] == shown_framework
    expected = shown_specializations or [s.upper() for s in specializations]
    assert me["specializations"] == expected
    # Query parameters parse enums the same way.
    listed = http.get(
        "/api/v1/agents", params={"framework": framework.lower(), "limit": 100}
    ).json()
    assert all(p["framework"] == shown_framework for p in listed["data"])
    assert response.json()["agentId"] in {p["agentId"] for p in listed["data"]}
