"""Secrets never reach a log line: headers, keys, passwords, tokens, PEM keys."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from services.core.logging import configure_logging, get_logger, redact_value

KEY = "bw_agent_Zx9" + "k" * 40
SECRETS = {
    "authorization": f"Bearer {KEY}",
    "api_key": KEY,
    "password": "hunter2-hunter2",
    "refresh_token": "eyJhbGciOiJIUzI1NiJ9.payload.sig",
    "verification_code": "123456",
}


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging(service="test", level="DEBUG")
    handler = logging.getLogger().handlers[0]
    handler.setStream(stream)  # type: ignore[attr-defined]
    yield stream
    logging.getLogger().handlers.clear()
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def test_secret_fields_and_credential_shaped_values_are_redacted(captured: io.StringIO) -> None:
    log = get_logger("test")
    log.info("call", **SECRETS, metadata={"authorization": f"Bearer {KEY}", "user-agent": "k6"})
    log.warning(f"client sent Bearer {KEY} in a message")
    logging.getLogger("grpc").error("stdlib logger saw %s", KEY)
    output = captured.getvalue()
    for secret in (KEY, "hunter2-hunter2", "eyJhbGciOiJIUzI1NiJ9.payload.sig", "123456"):
        assert secret not in output
    lines = [json.loads(line) for line in output.splitlines()]
    assert lines[0]["authorization"] == "[REDACTED]"
    assert lines[0]["metadata"] == {"authorization": "[REDACTED]", "user-agent": "k6"}
    assert lines[0]["service"] == "test"
    assert all(line["level"] for line in lines)


def test_pem_private_keys_are_redacted() -> None:
    pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI\n-----END PRIVATE KEY-----"
    assert "MC4CAQ" not in redact_value(f"loaded {pem}")


def test_exceptions_in_logs_are_redacted_too(captured: io.StringIO) -> None:
    log = get_logger("test")
    try:
        raise ValueError(f"bad key {KEY}")
    except ValueError:
        log.exception("boom")
    assert KEY not in captured.getvalue()
    assert "ValueError" in captured.getvalue()
