"""Error tracking settings and the scrubbing every event passes before it leaves the process."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from services.core import errors
from services.core.error_tracking import FILTERED, scrub_event, scrub_text, sentry_options
from services.core.settings import Settings, SettingsError, load_settings

BEARER = "Bearer bw_agent_Q1w2E3r4T5y6U7i8"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJoMSJ9.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    ("text", "kept", "gone"),
    [
        ("authorization failed: " + BEARER, "authorization failed", "bw_agent_Q1w2"),
        ("login password=hunter2 for user 7", "for user 7", "hunter2"),
        ('{"api_key": "k-123", "limit": 5}', '"limit": 5', "k-123"),
        ("x-api-key: sk-live-9 then more", "then more", "sk-live-9"),
        ("refresh_token=abc.def&next=/home", "next=/home", "abc.def"),
        ("session_id: s-42 expired", "expired", "s-42"),
        ("cookie=sid%3D9f; path=/", "path=/", "sid%3D9f"),
        ("token " + JWT + " was rejected", "was rejected", JWT),
        ("mail to alice.quinn@example.org bounced", "bounced", "alice.quinn@example.org"),
        ("GET /api/v1/x?signature=zz9&page=2", "page=2", "zz9"),
        ("release betterworld-mesh@0.1.0 started", "betterworld-mesh@0.1.0", "\x00"),
    ],
)
def test_free_text_keeps_the_story_and_loses_the_secrets(text: str, kept: str, gone: str) -> None:
    scrubbed = scrub_text(text)
    assert kept in scrubbed
    assert gone not in scrubbed


def _event() -> dict[str, Any]:
    return {
        "release": "betterworld-mesh@0.1.0",
        "environment": "production",
        "user": {"email": "bob@example.org", "ip_address": "10.0.0.7"},
        "request": {
            "headers": {"Authorization": BEARER, "User-Agent": "agent/1"},
            "cookies": {"sid": "abc"},
            "data": {"password": "pw-1", "title": "Flooded road"},
        },
        "extra": {"api_key": "k-9", "note": "contact carol@example.org", "session_id": "s-1"},
        "breadcrumbs": {
            "values": [
                {"message": "login with password=pw-2", "data": {"token": "t-1", "n": 3}},
            ]
        },
        "exception": {
            "values": [
                {
                    "type": "RuntimeError",
                    "value": "could not verify " + JWT,
                    "stacktrace": {
                        "frames": [{"function": "handler", "vars": {"secret": "v-1", "x": "1"}}]
                    },
                }
            ]
        },
        "modules": {"tokenizers": "0.22.1"},
    }


def test_an_event_is_scrubbed_everywhere_request_data_can_hide() -> None:
    event = scrub_event(_event(), {})
    assert event is not None
    flat = repr(event)
    for secret in ("bw_agent_Q1w2", "pw-1", "pw-2", "k-9", "s-1", "t-1", "v-1", JWT, "abc"):
        assert secret not in flat
    for address in ("bob@example.org", "carol@example.org", "10.0.0.7"):
        assert address not in flat
    assert "user" not in event
    assert event["request"]["headers"] == {"Authorization": FILTERED, "User-Agent": "agent/1"}
    assert event["request"]["data"]["title"] == "Flooded road"
    assert event["breadcrumbs"]["values"][0]["data"]["n"] == 3
    # The SDK's own sections are left alone.
    assert event["modules"] == {"tokenizers": "0.22.1"}
    assert event["release"] == "betterworld-mesh@0.1.0"


@pytest.mark.parametrize(
    "error",
    [
        errors.ResourceExhausted("slow down", retry_after_seconds=1),
        errors.Unauthenticated("no key"),
        errors.InvalidArgument.one("title", "too short"),
        errors.NotFound("problem", "p1"),
    ],
)
def test_domain_errors_are_dropped_even_if_captured(error: errors.DomainError) -> None:
    assert scrub_event(_event(), {"exc_info": (type(error), error, None)}) is None


def test_options_collect_no_personal_data_and_no_local_variables() -> None:
    settings = Settings(_env_file=None, sentry_dsn="https://pub@o1.ingest.example.io/42")  # type: ignore[call-arg]
    options = sentry_options(settings)
    collection = options["data_collection"]
    assert collection["user_info"] is False
    assert collection["stack_frame_variables"] is False
    assert collection["http_bodies"] == []
    assert collection["cookies"] == {"mode": "off"}
    assert options["auto_enabling_integrations"] is False
    assert options["environment"] == "development"
    assert options["before_send"] is scrub_event


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("SENTRY_DSN", "not a url", "not a Sentry DSN"),
        ("SENTRY_DSN", "https://ingest.example.io/42", "Missing public key"),
        ("SENTRY_DSN", "https://pub:shh-secret@ingest.example.io/project", "Invalid project"),
        ("SENTRY_TRACES_SAMPLE_RATE", "1.5", "less than or equal to 1"),
        ("SENTRY_ENVIRONMENT", "prod/eu", "pattern"),
        ("SENTRY_RELEASE", "has space", "pattern"),
    ],
)
def test_bad_settings_stop_startup_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, problem: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as raised:
        load_settings(Settings, _env_file=None)
    message = str(raised.value)
    assert f"{variable}:" in message and problem in message
    assert "shh-secret" not in message


def test_without_a_dsn_the_sdk_is_never_imported() -> None:
    # The SDK costs a quarter of a second to import: a process without a DSN never pays it.
    script = (
        "import sys, asyncio\n"
        "from services.core.settings import Settings\n"
        "from services.core import server, jobs, error_tracking\n"
        "on = error_tracking.start_error_tracking(Settings(_env_file=None), service='x')\n"
        "error_tracking.report_unexpected(RuntimeError('x'))\n"
        "asyncio.run(error_tracking.stop_error_tracking())\n"
        "assert not on and 'sentry_sdk' not in sys.modules, sorted(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
