"""Error tracking over the real wire: a service on port 0 whose handlers fail on purpose, the real
Sentry SDK, and a local fake of Sentry's ingest endpoint that records what arrives."""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import json
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
import sentry_sdk
from bullmq import Queue, Worker
from pydantic import SecretStr

from services.core import errors
from services.core.error_tracking import default_release, is_active, reporting_crashes
from services.core.jobs import PeriodicTask
from services.core.runtime import build_runtime
from services.core.server import ServiceServer
from services.core.settings import Settings
from services.worker.main import WORKER
from tests.fakes.sentry_ingest import FakeSentryIngest
from tests.support import echo
from tests.support.helpers import RunningService, refused, running_service

# Values that must never reach Sentry, sent in the failing request's metadata and message.
INTERNAL_TOKEN = "internal-token-5f0c9e2d7a41b6c3e8f9a0b1c2d3e4f5"
API_KEY = "bw_agent_Zr8Qx2Lk5Vn7Tp3Wm9Yc4Hd6"
COOKIE = "sid-cookie-6b1e0f3a9c"
SESSION_ID = "sess-2d9f4a7c1e"
PASSWORD = "hunter2-correct-horse"
TOKEN = "tok-81c4e0a9f2"
EMAIL = "alice.quinn@example.org"
SECRETS = (INTERNAL_TOKEN, API_KEY, COOKIE, SESSION_ID, PASSWORD, TOKEN, EMAIL)

CRASH_TEXT = f"crash password={PASSWORD} token={TOKEN} reply to {EMAIL} key {API_KEY}"
CRASH_METADATA = (
    ("authorization", f"Bearer {INTERNAL_TOKEN}"),
    ("x-api-key", API_KEY),
    ("cookie", f"session={COOKIE}"),
    ("x-session-id", SESSION_ID),
    ("x-request-id", "req-error-tracking-1"),
)


@pytest.fixture(scope="module")
def echo_service(tmp_path_factory: pytest.TempPathFactory) -> echo.Echo:
    return echo.build(tmp_path_factory.mktemp("echo"))


@pytest.fixture
def failing_definition(echo_service: echo.Echo) -> Any:
    """EchoService whose Echo fails as its text says: a bug (an unexpected exception) or one
    of the domain errors a client may cause."""
    pb2, pb2_grpc = echo_service.pb2, echo_service.pb2_grpc

    class FailingEcho(pb2_grpc.EchoServiceServicer):  # type: ignore[misc,name-defined]
        async def Echo(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
            text = request.text
            if text.startswith("crash"):
                raise RuntimeError(f"could not handle {text!r}")
            if text == "invalid":
                raise errors.InvalidArgument.one("text", "is not valid")
            if text == "missing":
                raise errors.NotFound("echo", "missing")
            if text == "denied":
                raise errors.PermissionDenied("not yours")
            if text == "conflict":
                raise errors.Conflict("changed meanwhile")
            return pb2.EchoResponse(text=text)

    def register(server: grpc.aio.Server, runtime: Any) -> None:
        pb2_grpc.add_EchoServiceServicer_to_server(FailingEcho(), server)

    return dataclasses.replace(echo_service.definition, register=register)


@pytest.fixture
async def ingest() -> AsyncIterator[FakeSentryIngest]:
    async with FakeSentryIngest() as fake:
        yield fake


@pytest.fixture
def tracked_settings(settings: Settings, ingest: FakeSentryIngest) -> Settings:
    return settings.model_copy(
        update={
            "sentry_dsn": ingest.dsn,
            "internal_service_token": SecretStr(INTERNAL_TOKEN),
            "rate_limit_public_per_ip": 3,
            "rate_limit_batch_seconds": 0,
        }
    )


def _sent_bytes(ingest: FakeSentryIngest) -> str:
    """Everything the SDK sent, decompressed, as text."""
    parts = []
    for request in ingest.requests:
        raw = request.raw_body
        parts.append((gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode())
    return "\n".join(parts)


async def _echo(service: RunningService, echo_service: echo.Echo, text: str, **kw: Any) -> Any:
    stub = echo_service.pb2_grpc.EchoServiceStub(service.channel)
    return await stub.Echo(echo_service.pb2.EchoRequest(text=text), **kw)


async def test_an_unexpected_error_sends_one_scrubbed_event(
    tracked_settings: Settings,
    failing_definition: Any,
    echo_service: echo.Echo,
    ingest: FakeSentryIngest,
    clean_state: None,
) -> None:
    async with running_service(failing_definition, tracked_settings) as service:
        failure = await refused(_echo(service, echo_service, CRASH_TEXT, metadata=CRASH_METADATA))
        assert failure.code is grpc.StatusCode.INTERNAL
        await ingest.wait_for_events(1)

    [event] = ingest.events()
    assert event["release"] == default_release()
    assert event["environment"] == "development"
    assert event["tags"]["service"] == "echo"
    assert event["tags"]["grpc.method"] == "/testing.echo.v1.EchoService/Echo"
    assert event["tags"]["request_id"] == "req-error-tracking-1"
    [exception] = event["exception"]["values"]
    assert exception["type"] == "RuntimeError"
    assert "could not handle" in exception["value"]
    metadata = event["contexts"]["grpc"]["metadata"]
    assert metadata["x-request-id"] == "req-error-tracking-1"
    for name in ("authorization", "x-api-key", "cookie", "x-session-id"):
        assert metadata[name] == "[Filtered]"
    assert "user" not in event
    frames = exception["stacktrace"]["frames"]
    assert frames and not any("vars" in frame for frame in frames)
    sent = _sent_bytes(ingest)
    leaked = [secret for secret in SECRETS if secret in sent]
    assert leaked == []


async def test_client_errors_send_nothing(
    tracked_settings: Settings,
    failing_definition: Any,
    echo_service: echo.Echo,
    ingest: FakeSentryIngest,
    clean_state: None,
) -> None:
    async with running_service(failing_definition, tracked_settings) as service:
        whoami = echo_service.pb2_grpc.EchoServiceStub(service.channel).WhoAmI
        expected = [
            (_echo(service, echo_service, "invalid"), grpc.StatusCode.INVALID_ARGUMENT),
            (_echo(service, echo_service, "missing"), grpc.StatusCode.NOT_FOUND),
            (
                _echo(service, echo_service, "ok", metadata=(("authorization", "Bearer nope"),)),
                grpc.StatusCode.UNAUTHENTICATED,
            ),
            (whoami(echo_service.pb2.WhoAmIRequest()), grpc.StatusCode.UNAUTHENTICATED),
        ]
        for call, code in expected:
            assert (await refused(call)).code is code
        # Three public requests a minute, and the refused key counted: the next one is limited.
        limited = await refused(_echo(service, echo_service, "denied"))
        assert limited.code is grpc.StatusCode.RESOURCE_EXHAUSTED
        # An internal caller is not rate limited: the remaining domain errors, then one bug as
        # a marker. Events go out in order, so once the marker is in, nothing came before it.
        internal = (("authorization", f"Bearer {INTERNAL_TOKEN}"),)
        for text, code in (
            ("denied", grpc.StatusCode.PERMISSION_DENIED),
            ("conflict", grpc.StatusCode.FAILED_PRECONDITION),
        ):
            assert (
                await refused(_echo(service, echo_service, text, metadata=internal))
            ).code is code
        await refused(_echo(service, echo_service, "crash marker", metadata=internal))
        await ingest.wait_for_events(1)

    [event] = ingest.events()
    assert "crash marker" in event["exception"]["values"][0]["value"]


async def test_settings_name_the_environment_and_release(
    tracked_settings: Settings,
    failing_definition: Any,
    echo_service: echo.Echo,
    ingest: FakeSentryIngest,
    clean_state: None,
) -> None:
    settings = tracked_settings.model_copy(
        update={"sentry_environment": "staging", "sentry_release": "3f2c1ab"}
    )
    async with running_service(failing_definition, settings) as service:
        await refused(_echo(service, echo_service, "crash"))
        [event] = await ingest.wait_for_events(1)
    assert (event["environment"], event["release"]) == ("staging", "3f2c1ab")


async def test_without_a_dsn_nothing_starts_or_is_sent(
    settings: Settings,
    failing_definition: Any,
    echo_service: echo.Echo,
    ingest: FakeSentryIngest,
    clean_state: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The SDK would read SENTRY_DSN from the environment on its own: the settings decide.
    monkeypatch.setenv("SENTRY_DSN", ingest.dsn)
    untracked = settings.model_copy(update={"sentry_dsn": ""})
    async with running_service(failing_definition, untracked) as service:
        assert not is_active()
        assert not sentry_sdk.is_initialized()
        assert (await refused(_echo(service, echo_service, "crash"))).code is (
            grpc.StatusCode.INTERNAL
        )
    await asyncio.sleep(0.3)
    assert ingest.requests == []


async def test_a_crashed_periodic_job_in_the_worker_sends_an_event(
    tracked_settings: Settings, ingest: FakeSentryIngest, clean_state: None
) -> None:
    runtime = build_runtime(tracked_settings)
    server = ServiceServer(WORKER, runtime, host="127.0.0.1", port=0)
    rounds = 0

    async def reconcile() -> None:
        nonlocal rounds
        rounds += 1
        raise RuntimeError(f"reconciliation failed for {EMAIL} (password={PASSWORD})")

    task = PeriodicTask("ledger-reconcile", reconcile, interval=60)
    await server.start()
    task.start()
    try:
        [event] = await ingest.wait_for_events(1)
    finally:
        await task.stop()
        await server.stop(1)
        await runtime.close()

    assert rounds == 1
    assert event["tags"]["service"] == "worker"
    assert event["tags"]["job"] == "ledger-reconcile"
    assert event["exception"]["values"][0]["type"] == "RuntimeError"
    sent = _sent_bytes(ingest)
    assert EMAIL not in sent and PASSWORD not in sent


async def test_a_queue_job_is_reported_once_when_its_last_attempt_fails(
    tracked_settings: Settings, ingest: FakeSentryIngest, clean_state: None
) -> None:
    runtime = build_runtime(tracked_settings)
    server = ServiceServer(WORKER, runtime, host="127.0.0.1", port=0)
    attempts: list[int] = []

    async def process(job: Any, token: str) -> None:
        attempts.append(job.attemptsMade + 1)
        raise ValueError(f"cannot parse {job.data['payload']}")

    queue = Queue("error-tracking-test", {"connection": tracked_settings.redis_url})
    worker = Worker(
        "error-tracking-test",
        reporting_crashes("error-tracking-test", process),
        {"connection": tracked_settings.redis_url},
    )
    await server.start()
    try:
        await queue.add("parse", {"payload": f"token={TOKEN}"}, {"attempts": 3})
        [event] = await ingest.wait_for_events(1)
        assert attempts == [1, 2, 3]
    finally:
        await worker.close()
        await queue.close()
        await server.stop(1)
        await runtime.close()

    assert len(ingest.events()) == 1
    assert event["tags"]["queue"] == "error-tracking-test"
    assert event["tags"]["job"] == "parse"
    assert TOKEN not in json.dumps(event)
