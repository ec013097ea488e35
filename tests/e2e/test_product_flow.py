"""The whole product through `betterworld up`'s machinery: report, guardrail, review, publish."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from betterworld.common.v1 import common_pb2
from betterworld.content.v1 import content_pb2, content_pb2_grpc
from google.protobuf import json_format
from google.protobuf.message import Message
from hypothesis import given
from hypothesis import strategies as st

from services.core.migrate import upgrade
from services.core.queues import GUARDRAIL_QUEUE, consumer_count
from tests.e2e.test_fuzz import FUZZ, Route, check_http, json_bodies, request_text
from tests.support.e2e_stack import isolated_stack_settings
from tooling.process import seed
from tooling.stack import Stack

pytestmark = pytest.mark.e2e

PROBLEM = {
    "title": "Broken water pumps in Kisumu informal settlements",
    "description": "Half of the hand pumps serving informal settlements in Kisumu have been "
    "broken for months, so families walk an hour to collect water from the lake.",
    "domain": "clean_water_sanitation",
    "severity": "high",
    "geographicScope": "local",
}


@pytest.fixture(scope="module")
def product(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, dict[str, str]]]:
    """All services, the worker and Envoy on free ports, over a fresh embedded database."""
    data = Path(tmp_path_factory.mktemp("product"))
    settings = isolated_stack_settings(
        data,
        # High limits: the fuzz below must reach validation, not stop at 429s.
        rate_limit_content_per_agent=100_000,
        rate_limit_agent_verified=100_000,
        rate_limit_public_per_ip=100_000,
    )
    stack = Stack(settings)
    try:
        stack.start_databases()
        upgrade(stack.postgres.url)
        seeded_settings = settings.model_copy(
            update={"database_url": stack.postgres.url, "redis_url": stack.valkey.url}
        )
        seeded = asyncio.run(seed(seeded_settings))
        keys = {a.username: a.api_key for a in seeded.agents}
        operator = subprocess.run(
            [sys.executable, "-m", "tooling.cli", "operator", "create-key", "--name", "e2e-ops"],
            env=stack.env(),
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()[2]
        keys["operator"] = operator
        stack.start_services()
        stack.wait_healthy()
        dev = seeded.humans[0]
        base = f"http://{settings.host}:{settings.envoy_port}"
        login = httpx.post(
            f"{base}/api/v1/human-auth/login",
            json={"email": dev.email, "password": dev.password},
            timeout=30,
        )
        keys["human"] = login.json()["accessToken"]
        yield stack, keys
    finally:
        stack.stop()


def _wait(check: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.3)
    raise AssertionError("not reached in time")


def test_report_evaluate_review_publish(product: tuple[Stack, dict[str, str]]) -> None:
    stack, keys = product
    # The stack is up only once the worker consumes: a first create is not held by its start.
    assert asyncio.run(consumer_count(stack.valkey.url, GUARDRAIL_QUEUE)) >= 1
    worker = stack.children["worker"]
    # Background work: the worker takes only CPU that request serving leaves.
    assert stack.settings.worker_idle_priority
    assert os.sched_getscheduler(worker.pid) == os.SCHED_IDLE
    base = f"http://{stack.settings.host}:{stack.settings.envoy_port}"
    author = {"authorization": f"Bearer {keys['sentinel-alpha']}"}
    ops = {"authorization": f"Bearer {keys['operator']}"}
    with httpx.Client(base_url=base, timeout=15) as http:
        seeded = http.get("/api/v1/problems", params={"limit": 100}).json()["data"]
        assert len(seeded) == 16
        lake = http.get("/api/v1/search", params={"q": "algae in an urban lake"}).json()["data"][0]
        assert lake["title"] == "Declining water quality in Lake Merritt"

        created = http.post("/api/v1/problems", json=PROBLEM, headers=author)
        assert created.status_code == 201, created.text
        problem = created.json()["problem"]
        assert problem["guardrailStatus"] == "PENDING"
        path = f"/api/v1/problems/{problem['problemId']}"
        assert http.get(path).status_code == 404  # not public until approved

        # The seeded author's account is minutes old: the guardrail flags it for a person.
        evaluation = f"/api/v1/guardrails/evaluations/{problem['guardrailEvaluationId']}"
        decided = _wait(
            lambda: (
                (e := http.get(evaluation, headers=author).json())["decision"] != "PENDING" and e
            )
        )
        assert decided["decision"] == "FLAGGED", decided
        assert decided["rulesRejected"] is False

        queue = http.get("/api/v1/admin/flagged", headers=ops).json()["data"]
        item = next(i for i in queue if i["contentId"] == problem["problemId"])
        claim = http.post(f"/api/v1/admin/flagged/{item['flaggedId']}/claim", json={}, headers=ops)
        assert claim.json()["status"] == "CLAIMED"
        review = http.post(
            f"/api/v1/admin/flagged/{item['flaggedId']}/review",
            json={"decision": "approve", "notes": "Verified with the county water office."},
            headers=ops,
        )
        assert review.json()["status"] == "RESOLVED", review.text
        public = http.get(path)
        assert public.status_code == 200
        assert public.json()["guardrailStatus"] == "APPROVED"
        assert "guardrail" not in public.json() or not public.json()["guardrail"]
        # The worker embeds it after its evaluation (embedding queue): once approved and
        # embedded it is found by meaning.
        search = {"q": "water pumps broken in Kisumu"}
        _wait(
            lambda: (
                http.get("/api/v1/search", params=search).json()["data"][0]["id"]
                == problem["problemId"]
            ),
            timeout=30,
        )

        harmful = http.post(
            "/api/v1/problems",
            json={
                **PROBLEM,
                "title": "Tracking protesters for their employers",
                "description": "We will build a covert surveillance system to track protesters "
                "from their phone data and hand the list to their employers.",
            },
            headers=author,
        ).json()["problem"]
        own = f"/api/v1/problems/{harmful['problemId']}"
        rejected = _wait(
            lambda: (
                (p := http.get(own, headers=author).json())["guardrailStatus"] == "REJECTED" and p
            )
        )
        assert "surveillance" in rejected["guardrail"]["explanation"]


CONTENT_ROUTES = (
    Route("CreateProblem", "POST", "/api/v1/problems", (*PROBLEM, "latitude", "longitude",
          "evidenceLinks", "dataSources", "selfAudit", "existingSolutions")),
    Route("UpdateProblem", "PATCH", "/api/v1/problems/{id}", ("title", "description", "domain")),
    Route("CreateSolution", "POST", "/api/v1/solutions", ("problemId", "title", "description",
          "approach", "expectedImpact", "estimatedCost", "risksAndMitigations")),
    Route("CreateDebate", "POST", "/api/v1/solutions/{id}/debates", ("stance", "content",
          "parentDebateId", "evidenceLinks")),
    Route("PrecheckContent", "POST", "/api/v1/guardrails/precheck", ("contentType", "title",
          "text")),
    Route("ReviewFlagged", "POST", "/api/v1/admin/flagged/{id}/review", ("decision", "notes")),
)  # fmt: skip


@pytest.mark.parametrize("route", CONTENT_ROUTES, ids=lambda r: r.rpc)
def test_junk_never_breaks_content_or_guardrail_routes(
    product: tuple[Stack, dict[str, str]], route: Route
) -> None:
    stack, keys = product
    base = f"http://{stack.settings.host}:{stack.settings.envoy_port}"
    auths = [
        {},
        {"authorization": f"Bearer {keys['community-nexus']}"},
        {"authorization": f"Bearer {keys['operator']}"},
    ]
    with httpx.Client(base_url=base, timeout=30) as http:
        lake = http.get("/api/v1/search", params={"q": "lake"}).json()["data"][0]["id"]

        @FUZZ
        @given(
            body=json_bodies(route),
            auth=st.sampled_from(auths),
            target=st.sampled_from([lake, "not-a-uuid", "00000000-0000-4000-8000-000000000000"]),
        )
        def run(body: bytes, auth: dict[str, str], target: str) -> None:
            path = route.path.replace("{id}", target)
            headers = {**auth, "content-type": "application/json"}
            response = http.request(route.method, path, content=body, headers=headers)
            check_http(response, request_text(path, body))

        run()


MISSION_ROUTES = (
    Route("CreateMission", "POST", "/api/v1/missions", ("solutionId", "title", "description",
          "instructions", "evidenceRequired", "requiredSkills", "latitude", "longitude",
          "locationRadiusKm", "estimatedDurationMinutes", "difficulty", "tokenReward",
          "maxClaims", "expiresAt")),
    Route("UpdateMission", "PATCH", "/api/v1/missions/{id}", ("version", "title", "tokenReward",
          "maxClaims", "instructions", "expiresAt")),
    Route("ClaimMission", "POST", "/api/v1/missions/{id}/claim", ()),
    Route("UpdateClaim", "PATCH", "/api/v1/missions/{id}/claims/{id}", ("progressPercent",
          "notes", "abandon")),
    Route("DecomposeSolution", "POST", "/api/v1/solutions/{id}:decompose", ()),
    Route("RegisterHuman", "POST", "/api/v1/human-auth/register", ("email", "password",
          "displayName")),
    Route("Login", "POST", "/api/v1/human-auth/login", ("email", "password")),
    Route("Refresh", "POST", "/api/v1/human-auth/refresh", ("refreshToken",)),
    Route("CreateProfile", "POST", "/api/v1/profile", ("skills", "languages", "city",
          "country", "latitude", "longitude", "serviceRadiusKm", "availability", "bio")),
    Route("UpdateProfile", "PATCH", "/api/v1/profile", ("skills", "languages", "latitude",
          "clearLocation", "availability")),
    Route("DeactivateHuman", "POST", "/api/v1/admin/humans/{id}:deactivate", ("reason",)),
    Route("SpendTokens", "POST", "/api/v1/tokens/spend", ("amount", "type", "referenceId",
          "description", "idempotencyKey")),
    Route("ClaimOrientationReward", "POST", "/api/v1/tokens/orientation-reward", ()),
    Route("AppealEvidence", "POST", "/api/v1/evidence/{id}/appeal", ("reason",)),
    Route("VotePeerReview", "POST", "/api/v1/peer-reviews/{id}/vote", ("verdict", "confidence",
          "reasoning")),
    Route("ResolveDispute", "POST", "/api/v1/admin/disputes/{id}/resolve", ("decision",
          "reasoning")),
)  # fmt: skip
EVIDENCE_QUERIES = st.dictionaries(
    st.sampled_from(["latitude", "longitude", "capturedAt", "notes", "pairId", "sequence", "x"]),
    st.one_of(st.integers(-(10**6), 10**6).map(str), st.floats().map(str), st.text(max_size=30)),
    max_size=5,
)
UPLOAD_BODIES = st.one_of(
    st.binary(max_size=2048),
    st.binary(max_size=512).map(lambda tail: b"\x89PNG\r\n\x1a\n" + tail),
    st.binary(max_size=512).map(lambda tail: b"\xff\xd8\xff\xe0" + tail),
    st.binary(max_size=512).map(lambda tail: b"\x00\x00\x00\x18ftypheic" + tail),
)
NEARBY_QUERIES = st.dictionaries(
    st.sampled_from(["lat", "lng", "radius", "limit", "cursor", "x"]),
    st.one_of(st.integers(-(10**6), 10**6).map(str), st.floats().map(str), st.text(max_size=20)),
    max_size=5,
)


@pytest.mark.parametrize("route", MISSION_ROUTES, ids=lambda r: r.rpc)
def test_junk_never_breaks_mission_routes(
    product: tuple[Stack, dict[str, str]], route: Route
) -> None:
    stack, keys = product
    base = f"http://{stack.settings.host}:{stack.settings.envoy_port}"
    auths = [
        {},
        {"authorization": f"Bearer {keys['sentinel-alpha']}"},
        {"authorization": f"Bearer {keys['operator']}"},
        {"authorization": f"Bearer {keys['human']}"},
        {"authorization": f"Bearer {keys['human'][:-2]}xx"},
    ]
    with httpx.Client(base_url=base, timeout=30) as http:
        nearby = http.get("/api/v1/missions/nearby", params={"lat": 37.77, "lng": -122.42})
        seeded = nearby.json()["data"][0]["missionId"]

        @FUZZ
        @given(
            body=json_bodies(route),
            auth=st.sampled_from(auths),
            target=st.sampled_from([seeded, "not-a-uuid", "00000000-0000-4000-8000-000000000000"]),
        )
        def run(body: bytes, auth: dict[str, str], target: str) -> None:
            path = route.path.replace("{id}", target)
            headers = {**auth, "content-type": "application/json"}
            response = http.request(route.method, path, content=body, headers=headers)
            check_http(response, request_text(path, body))

        run()


def test_junk_uploads_never_break_evidence(product: tuple[Stack, dict[str, str]]) -> None:
    stack, keys = product
    base = f"http://{stack.settings.host}:{stack.settings.envoy_port}"
    human = {"authorization": f"Bearer {keys['human']}"}
    with httpx.Client(base_url=base, timeout=30) as http:
        nearby = http.get("/api/v1/missions/nearby", params={"lat": 37.77, "lng": -122.42})
        seeded = nearby.json()["data"][0]["missionId"]
        http.post(f"/api/v1/missions/{seeded}/claim", json={}, headers=human)

        @FUZZ
        @given(
            body=UPLOAD_BODIES,
            query=EVIDENCE_QUERIES,
            ctype=st.sampled_from(["image/png", "image/jpeg", "application/pdf", "text/plain", ""]),
            target=st.sampled_from([seeded, "not-a-uuid"]),
        )
        def run(body: bytes, query: dict[str, str], ctype: str, target: str) -> None:
            path = f"/api/v1/missions/{target}/evidence"
            headers = {**human, "content-type": ctype} if ctype else human
            response = http.post(path, params=query, content=body, headers=headers)
            assert response.status_code != 201 or body[:4] in (b"\x89PNG", b"\xff\xd8\xff\xe0")
            check_http(response, request_text(path, str(query)))
            for read in (f"/api/v1/evidence/{target}", f"/api/v1/evidence/{target}/file"):
                check_http(http.get(read, headers=human), request_text(read))

        run()


def test_junk_queries_never_break_nearby(product: tuple[Stack, dict[str, str]]) -> None:
    stack, _ = product
    base = f"http://{stack.settings.host}:{stack.settings.envoy_port}"
    with httpx.Client(base_url=base, timeout=30) as http:

        @FUZZ
        @given(query=NEARBY_QUERIES)
        def run(query: dict[str, str]) -> None:
            response = http.get("/api/v1/missions/nearby", params=query)
            check_http(response, request_text(str(query)))

        run()


def test_json_lists_are_the_grpc_lists_as_json(product: tuple[Stack, dict[str, str]]) -> None:
    """GET /api/v1/problems and /api/v1/solutions are rendered by the service, not the
    transcoder: their bodies must be exactly what the typed RPCs answer, in the proto3 JSON
    mapping the transcoder prints (camelCase, enum names, empty fields present)."""
    stack, keys = product
    base = f"http://{stack.settings.host}:{stack.settings.envoy_port}"
    mine = (("authorization", f"Bearer {keys['sentinel-alpha']}"),)
    with (
        httpx.Client(base_url=base, timeout=15) as http,
        grpc.insecure_channel(f"{stack.settings.host}:{stack.settings.envoy_port}") as channel,
    ):
        content = content_pb2_grpc.ContentServiceStub(channel)

        def same(path: str, params: dict[str, Any], typed: Message, headers: Any = ()) -> Any:
            response = http.get(path, params=params, headers=dict(headers))
            assert response.status_code == 200, response.text
            assert response.headers["content-type"] == "application/json"
            assert response.headers["x-request-id"]
            assert json_format.Parse(response.content, type(typed)()) == typed
            return response.json()

        request = content_pb2.ListProblemsRequest(limit=3)
        first = content.ListProblems(request)
        body = same("/api/v1/problems", {"limit": 3}, first)
        assert body["meta"]["hasMore"] is True and body["meta"]["nextCursor"]
        item = body["data"][0]
        assert item["guardrailStatus"] == "APPROVED" and item["domain"].isupper()
        # Fields without presence are printed even when empty, as the transcoder prints them.
        assert item["upvotes"] == 0 and isinstance(item["evidenceLinks"], list)
        assert "guardrail" not in item  # the outcome is for the author only
        request.cursor = first.meta.next_cursor
        after = content.ListProblems(request)
        same("/api/v1/problems", {"limit": 3, "cursor": request.cursor}, after)
        care = content_pb2.ListProblemsRequest(domain=common_pb2.ELDER_CARE)
        same("/api/v1/problems", {"domain": "elder_care"}, content.ListProblems(care))

        lake = http.get("/api/v1/search", params={"q": "lake"}).json()["data"][0]["id"]
        solutions = content.ListSolutions(content_pb2.ListSolutionsRequest(problem_id=lake))
        body = same("/api/v1/solutions", {"problemId": lake}, solutions)
        assert body["data"][0]["status"] in ("PROPOSED", "DEBATING")

        # An author's own items carry the guardrail outcome, for that author only.
        own = content.ListProblems(content_pb2.ListProblemsRequest(mine=True), metadata=mine)
        assert any(p.HasField("guardrail") for p in own.data)
        same("/api/v1/problems", {"mine": "true"}, own, mine)

        # Errors of the JSON methods are the API's JSON errors, naming the field.
        bad = http.get("/api/v1/problems", params={"cursor": "not-a-cursor"})
        assert bad.status_code == 400, bad.text
        assert "cursor" in bad.text and bad.headers["content-type"] == "application/json"
        assert http.get("/api/v1/problems", params={"mine": "true"}).status_code == 403
