"""Contract tests of JSON errors through Envoy: HTTP status, google.rpc.Status body, details."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.support.e2e_http import (
    ME,
    REGISTER,
    bearer,
    json_error,
    seconds,
    service_error,
    unique,
)
from tests.support.e2e_stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

NewAgent = Callable[..., dict[str, Any]]
MIB = 1024 * 1024


def valid_registration(**fields: Any) -> dict[str, Any]:
    return {
        "username": unique("err"),
        "framework": "custom",
        "specializations": ["digital_inclusion"],
        **fields,
    }


@pytest.mark.parametrize(
    ("username", "why"),
    [
        ("Bad Name", "uppercase and space"),
        ("ab", "too short"),
        ("-leading", "starts with a separator"),
        ("double--dash", "doubled separator"),
        ("admin", "reserved"),
        ("x" * 101, "too long"),
    ],
)
def test_invalid_username_is_400_naming_the_field(
    http: httpx.Client, username: str, why: str
) -> None:
    response = http.post(REGISTER, json=valid_registration(username=username))
    error = service_error(response, 400, "INVALID_ARGUMENT")
    assert error.code == 3
    assert error.detail_types() == ["ErrorInfo", "BadRequest"]
    assert set(error.field_violations) == {"username"}, why
    assert error.field_violations["username"]
    assert "username" in error.message


def test_every_bad_field_gets_its_own_violation(http: httpx.Client) -> None:
    response = http.post(
        REGISTER,
        json={
            "username": "Nope!",
            "framework": "FRAMEWORK_UNSPECIFIED",
            "specializations": [],
            "email": "not-an-email",
        },
    )
    error = service_error(response, 400, "INVALID_ARGUMENT")
    assert set(error.field_violations) == {"username", "framework", "specializations", "email"}


def test_oversized_string_field_is_400_naming_the_field(
    http: httpx.Client, new_agent: NewAgent
) -> None:
    response = http.post(REGISTER, json=valid_registration(soulSummary="s" * 5000))
    error = service_error(response, 400, "INVALID_ARGUMENT")
    assert set(error.field_violations) == {"soul_summary"}
    assert "2000" in error.field_violations["soul_summary"]

    agent = new_agent("big")
    response = http.patch(
        ME, headers=agent["auth"], json={"displayName": "d" * 201, "modelProvider": "p" * 51}
    )
    error = service_error(response, 400, "INVALID_ARGUMENT")
    assert set(error.field_violations) == {"display_name", "model_provider"}


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "API_KEY_MISSING"),
        ({"authorization": "Basic dXNlcjpwYXNz"}, "AUTHORIZATION_MALFORMED"),
        (bearer("bw_agent_" + "A" * 43), "API_KEY_INVALID"),
        (bearer("not-a-key"), "API_KEY_INVALID"),
    ],
)
def test_missing_or_bad_credentials_are_401(
    http: httpx.Client, headers: dict[str, str], reason: str
) -> None:
    error = service_error(http.get(ME, headers=headers), 401, reason)
    assert error.code == 16
    assert error.detail_types() == ["ErrorInfo"]


def test_agent_key_on_an_operator_rpc_is_403(http: httpx.Client, new_agent: NewAgent) -> None:
    agent = new_agent("notop")
    response = http.post(
        f"/api/v1/admin/agents/{agent['agentId']}:deactivate",
        headers=agent["auth"],
        json={"reason": "self"},
    )
    service_error(response, 403, "OPERATOR_REQUIRED")


def test_deactivated_agent_is_403_and_hidden(
    http: httpx.Client, new_agent: NewAgent, operator_key: str
) -> None:
    agent = new_agent("deact")
    assert http.get(ME, headers=agent["auth"]).status_code == 200  # warms the auth cache
    response = http.post(
        f"/api/v1/admin/agents/{agent['agentId']}:deactivate",
        headers=bearer(operator_key),
        json={"reason": "spam"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["isActive"] is False

    error = service_error(http.get(ME, headers=agent["auth"]), 403, "AGENT_DEACTIVATED")
    assert error.code == 7
    service_error(http.get(f"/api/v1/agents/{agent['agentId']}"), 404, "AGENT_NOT_FOUND")

    response = http.post(
        f"/api/v1/admin/agents/{agent['agentId']}:reactivate",
        headers=bearer(operator_key),
        json={"reason": "appeal"},
    )
    assert response.status_code == 200, response.text
    assert http.get(ME, headers=agent["auth"]).status_code == 200


def test_unknown_agent_is_404_with_resource_info(http: httpx.Client) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    error = service_error(http.get(f"/api/v1/agents/{missing}"), 404, "AGENT_NOT_FOUND")
    assert error.code == 5
    assert error.resource == ("agent", missing)
    service_error(http.get("/api/v1/agents/not-a-uuid"), 404, "AGENT_NOT_FOUND")


def test_duplicate_username_is_409(http: httpx.Client) -> None:
    body = valid_registration()
    assert http.post(REGISTER, json=body).status_code == 201
    again = {**body, "framework": "openclaw", "specializations": ["elder_care"]}
    error = service_error(http.post(REGISTER, json=again), 409, "USERNAME_TAKEN")
    assert error.code == 6


async def test_concurrent_registrations_of_one_name_give_one_201(e2e_stack: Stack) -> None:
    body = valid_registration()
    async with httpx.AsyncClient(base_url=e2e_stack.base_url, timeout=15) as client:
        responses = await asyncio.gather(*(client.post(REGISTER, json=body) for _ in range(12)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * 11, statuses
    for response in responses:
        if response.status_code == 409:
            service_error(response, 409, "USERNAME_TAKEN")


@pytest.mark.parametrize("request_id", ["has spaces in it", "x" * 129, "semi;colon"])
def test_the_request_id_a_client_sees_is_the_one_the_service_logged(
    http: httpx.Client, request_id: str
) -> None:
    response = http.get(
        "/api/v1/agents/00000000-0000-4000-8000-000000000000",
        headers={"x-request-id": request_id},
    )
    error = json_error(response, 404)
    assert error.error_metadata["requestId"] == response.headers["x-request-id"]


@pytest.mark.parametrize(
    "content",
    [
        b'{"username": ',
        b"not json at all",
        b"\xff\xfe\x00junk",
        b"[1, 2, 3]",
        b'"just a string"',
        b'{"username": "a",}',
    ],
)
def test_malformed_json_is_400_json(http: httpx.Client, content: bytes) -> None:
    response = http.post(REGISTER, content=content, headers={"content-type": "application/json"})
    error = json_error(response, 400)
    assert error.code == 3
    assert error.message


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"username": 5}, "username"),
        ({"username": {"nested": "object"}}, "username"),
        ({"specializations": "x"}, "specializations"),
        ({"specializations": [1.5]}, "specializations"),
        ({"specializations": [{"a": 1}]}, "specializations"),
        ({"framework": True}, "framework"),
        ({"displayName": 12.5}, "display_name"),
        ({"email": False}, "email"),
        # The transcoder's parser does not say which field when a list meets a scalar.
        ({"username": ["a", "b"]}, None),
        ({"framework": ["LANGCHAIN"]}, None),
    ],
    ids=lambda v: (
        "-".join(f"{k}={type(x).__name__}" for k, x in v.items()) if isinstance(v, dict) else str(v)
    ),
)
def test_wrong_json_types_are_400_json(
    http: httpx.Client, fields: dict[str, Any], named: str | None
) -> None:
    error = json_error(http.post(REGISTER, json=valid_registration(**fields)), 400)
    assert error.code == 3
    assert error.message
    if named:
        assert named in error.message


@pytest.mark.parametrize(
    "fields",
    [
        {"framework": "tensorflow"},
        {"specializations": ["world_peace"]},
        {"specializations": ["food_security", "nonsense"]},
    ],
)
def test_unknown_enum_names_are_400_json(http: httpx.Client, fields: dict[str, Any]) -> None:
    error = json_error(http.post(REGISTER, json=valid_registration(**fields)), 400)
    assert error.code == 3
    assert next(iter(fields)) in error.message


def test_unknown_enum_numbers_are_400_naming_the_field(http: httpx.Client) -> None:
    error = service_error(
        http.post(REGISTER, json=valid_registration(framework=99)), 400, "INVALID_ARGUMENT"
    )
    assert set(error.field_violations) == {"framework"}
    error = service_error(
        http.post(REGISTER, json=valid_registration(specializations=[999])),
        400,
        "INVALID_ARGUMENT",
    )
    assert set(error.field_violations) == {"specializations"}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/nope"),
        ("GET", "/api/v2/agents"),
        ("DELETE", "/api/v1/agents/me"),
        ("GET", "/api/v1/auth/agents/register"),
        ("POST", "/api/v1/agents"),
        ("GET", "/favicon.ico"),
    ],
)
def test_unknown_paths_and_methods_are_404_json(http: httpx.Client, method: str, path: str) -> None:
    error = json_error(http.request(method, path), 404)
    assert error.code == 5


@pytest.mark.parametrize("agent_id", ["é" * 3000, "a" * 20000], ids=["18KiB-escaped", "20KiB"])
def test_a_very_long_path_is_a_client_error(http: httpx.Client, agent_id: str) -> None:
    response = http.get("/api/v1/agents/" + quote(agent_id, safe=""))
    assert response.status_code in (400, 404, 414, 431), response.text[:300]
    json_error(response, response.status_code)


def test_unknown_query_parameter_is_400_json(http: httpx.Client) -> None:
    error = json_error(http.get("/api/v1/agents", params={"pageSize": 5}), 400)
    assert error.code == 3
    assert "pageSize" in error.message


def test_unknown_body_fields_are_ignored_as_the_proto3_json_mapping_says(
    http: httpx.Client,
) -> None:
    # Envoy's transcoder has no option to reject them (unlike query parameters): a client may
    # send fields a newer API defines, and a misspelled field reads as not sent.
    response = http.post(REGISTER, json=valid_registration(futureField={"x": 1}))
    assert response.status_code == 201, response.text[:300]
    misspelled = valid_registration()
    misspelled["usrname"] = misspelled.pop("username")
    error = json_error(http.post(REGISTER, json=misspelled), 400)
    assert error.message == "invalid fields: username"


@pytest.mark.parametrize("path", [REGISTER, ME])
def test_body_over_one_mib_is_413_json(http: httpx.Client, new_agent: NewAgent, path: str) -> None:
    agent = new_agent("huge")
    content = b'{"soulSummary": "' + b"a" * (MIB + 16) + b'"}'
    method = "POST" if path == REGISTER else "PATCH"
    response = http.request(
        method,
        path,
        content=content,
        headers={**agent["auth"], "content-type": "application/json"},
    )
    error = json_error(response, 413)
    assert error.code == 8
    # Just under the limit is not rejected by Envoy: the service validates the field.
    content = b'{"soulSummary": "' + b"a" * (MIB - 64) + b'"}'
    response = http.patch(
        ME, content=content, headers={**agent["auth"], "content-type": "application/json"}
    )
    error = service_error(response, 400, "INVALID_ARGUMENT")
    assert set(error.field_violations) == {"soul_summary"}


def test_rate_limit_overflow_is_429_with_retry_headers_and_details(
    http: httpx.Client, new_agent: NewAgent, operator_key: str
) -> None:
    agent = new_agent("chatty")
    assert http.get(ME, headers=agent["auth"]).status_code == 200  # warms the auth cache
    response = http.put(
        f"/api/v1/admin/agents/{agent['agentId']}/rate-limit",
        headers=bearer(operator_key),
        json={"limitPerMinute": 2},
    )
    assert response.status_code == 200, response.text
    assert response.json()["rateLimitPerMinute"] == 2

    remaining = []
    for _ in range(2):
        ok = http.get(ME, headers=agent["auth"])
        assert ok.status_code == 200, ok.text
        assert ok.headers["x-ratelimit-limit"] == "2"
        remaining.append(int(ok.headers["x-ratelimit-remaining"]))
    assert remaining == [1, 0]

    response = http.get(ME, headers=agent["auth"])
    error = service_error(response, 429, "RATE_LIMITED")
    assert error.code == 8
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= 60
    assert response.headers["x-ratelimit-limit"] == "2"
    assert response.headers["x-ratelimit-remaining"] == "0"
    assert 1 <= int(response.headers["x-ratelimit-reset"]) <= 60
    assert error.retry_delay is not None
    assert 0 < seconds(error.retry_delay) <= retry_after
    assert error.quota_subjects == ["agent"]
    assert error.detail_types() == ["ErrorInfo", "RetryInfo", "QuotaFailure"]
