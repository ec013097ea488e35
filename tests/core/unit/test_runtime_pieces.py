"""Runtime building blocks: error mapping, cursors, rate-limit headers, keys, signing keys."""

from __future__ import annotations

import base64
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.rpc import error_details_pb2

from services.agent.signing import key_id, load_or_create_dev_key, load_private_key
from services.core import errors
from services.core.credentials.keys import AGENT_KEY_PREFIX, digest_key, generate_key
from services.core.pagination import CursorCodec, page_limit
from services.core.ratelimit import Decision
from services.core.status import domain_error_status, internal_status


def _details(status: object) -> dict[str, object]:
    out: dict[str, object] = {}
    for detail in status.details:  # type: ignore[attr-defined]
        for cls in (
            error_details_pb2.ErrorInfo,
            error_details_pb2.BadRequest,
            error_details_pb2.RetryInfo,
            error_details_pb2.QuotaFailure,
            error_details_pb2.ResourceInfo,
        ):
            if detail.Is(cls.DESCRIPTOR):
                message = cls()
                detail.Unpack(message)
                out[cls.__name__] = message
    return out


@pytest.mark.parametrize(
    ("error", "code", "extra"),
    [
        (
            errors.InvalidArgument.one("username", "bad"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "BadRequest",
        ),
        (errors.NotFound("agent", "x"), grpc.StatusCode.NOT_FOUND, "ResourceInfo"),
        (
            errors.ResourceExhausted(
                "slow down",
                retry_after_seconds=1.5,
                violations=[errors.QuotaViolation("agent", "60 a minute")],
            ),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "QuotaFailure",
        ),
        (errors.Unauthenticated("who?"), grpc.StatusCode.UNAUTHENTICATED, None),
        (errors.PermissionDenied("no"), grpc.StatusCode.PERMISSION_DENIED, None),
        (errors.AlreadyExists("dup"), grpc.StatusCode.ALREADY_EXISTS, None),
        (errors.FailedPrecondition("state"), grpc.StatusCode.FAILED_PRECONDITION, None),
        (errors.Aborted("race"), grpc.StatusCode.ABORTED, None),
        (errors.Unavailable("down"), grpc.StatusCode.UNAVAILABLE, None),
    ],
)
def test_every_domain_error_maps_to_its_code_with_error_info(
    error: errors.DomainError, code: grpc.StatusCode, extra: str | None
) -> None:
    mapped_code, status = domain_error_status(error, service="agent", request_id="rid-1")
    assert mapped_code == code
    details = _details(status)
    info = details["ErrorInfo"]
    assert info.domain == "agent.betterworld"  # type: ignore[attr-defined]
    assert info.reason == error.reason  # type: ignore[attr-defined]
    assert info.metadata["requestId"] == "rid-1"  # type: ignore[attr-defined]
    if extra:
        assert extra in details
    if isinstance(error, errors.ResourceExhausted):
        retry = details["RetryInfo"].retry_delay  # type: ignore[attr-defined]
        assert (retry.seconds, retry.nanos) == (1, 500_000_000)


def test_internal_status_says_nothing_about_the_cause() -> None:
    status = internal_status(service="agent", request_id="rid")
    assert status.code == grpc.StatusCode.INTERNAL.value[0]
    assert "request id" in status.message
    assert list(_details(status)) == ["ErrorInfo"]


def test_cursor_round_trip_and_tamper_detection() -> None:
    codec = CursorCodec(b"secret")
    cursor = codec.encode("scope", ["2026-11-21T00:00:00+00:00", "id-1"])
    assert codec.decode("scope", cursor) == ["2026-11-21T00:00:00+00:00", "id-1"]
    assert codec.decode("scope", "") is None
    raw = bytearray(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    raw[5] ^= 1
    forged = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    for bad, scope in [(forged, "scope"), (cursor, "other-scope"), ("%%%", "scope"), ("", "x")]:
        if not bad:
            continue
        with pytest.raises(errors.InvalidArgument) as info:
            codec.decode(scope, bad)
        assert info.value.reason == "CURSOR_INVALID"
    with pytest.raises(errors.InvalidArgument):
        CursorCodec(b"other-secret").decode("scope", cursor)


@pytest.mark.parametrize(("requested", "applied"), [(0, 20), (1, 1), (100, 100)])
def test_page_limit_defaults_and_bounds(requested: int, applied: int) -> None:
    assert page_limit(requested) == applied


def test_rate_limit_headers() -> None:
    allowed = Decision(True, 60, 59, 0.4, 0.0)
    assert allowed.headers() == {
        "x-ratelimit-limit": "60",
        "x-ratelimit-remaining": "59",
        "x-ratelimit-reset": "1",
    }
    denied = Decision(False, 60, 0, 59.2, 0.3)
    assert denied.headers()["retry-after"] == "1"


def test_api_keys_have_a_prefix_256_bits_and_only_a_digest_is_kept() -> None:
    key = generate_key(AGENT_KEY_PREFIX)
    secret = key.plaintext.removeprefix(AGENT_KEY_PREFIX)
    assert len(base64.urlsafe_b64decode(secret + "=")) == 32
    assert key.digest == digest_key(key.plaintext)
    assert len(key.digest) == 32
    assert key.display_prefix == key.plaintext[: len(AGENT_KEY_PREFIX) + 6]
    assert generate_key(AGENT_KEY_PREFIX).plaintext != key.plaintext


def test_signing_keys_load_from_pem_or_base64_and_persist(tmp_path: object) -> None:
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    seed = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    expected = key_id(private.public_key())
    assert key_id(load_private_key(pem).public_key()) == expected
    assert key_id(load_private_key(base64.b64encode(seed).decode()).public_key()) == expected
    for bad in ("not a key", base64.b64encode(b"short").decode()):
        with pytest.raises(ValueError):
            load_private_key(bad)
    path = Path(str(tmp_path)) / "dev.pem"
    first = load_or_create_dev_key(path)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert key_id(load_or_create_dev_key(path).public_key()) == key_id(first.public_key())


_RACE = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from services.agent.signing import key_id, load_or_create_dev_key

    start = float(sys.argv[2])
    while time.time() < start:
        pass
    print(key_id(load_or_create_dev_key(Path(sys.argv[1])).public_key()))
    """
)


def test_processes_starting_together_agree_on_one_dev_key(tmp_path: Path) -> None:
    # `serve --processes N` starts N processes at once on a fresh data dir: all of them must
    # come up, signing with the same key.
    path = tmp_path / "dev.pem"
    start = time.time() + 2.0  # every child imported and spinning by then
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _RACE, str(path), str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    results = [child.communicate(timeout=60) for child in children]
    assert [child.returncode for child in children] == [0] * 6, [err for _, err in results]
    assert len({out.strip() for out, _ in results}) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["dev.pem"]  # no candidate left behind
