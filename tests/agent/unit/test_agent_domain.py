"""Agent domain functions with fakes: validation, signed instructions, check-in rules."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from services.agent import heartbeat
from services.agent.accounts import validate_changes, validate_registration
from services.agent.deps import AgentDeps
from services.agent.signing import HeartbeatSigner
from services.agent.verification import mask_email
from services.core.context import Principal, PrincipalKind
from services.core.errors import InvalidArgument
from services.core.pagination import CursorCodec

NOW = datetime(2026, 11, 21, 12, 0, 0, tzinfo=UTC)
AGENT = Principal(kind=PrincipalKind.AGENT, id="7f1c9a52-0000-4000-8000-000000000001", name="a")


@pytest.fixture
def deps() -> AgentDeps:
    # No engine or Redis: these functions must not touch them.
    return AgentDeps(
        store=None,  # type: ignore[arg-type]
        redis=None,  # type: ignore[arg-type]
        cursors=CursorCodec(b"k"),
        signer=HeartbeatSigner(Ed25519PrivateKey.generate()),
        clock=lambda: NOW,
    )


def _registration(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "username": "good-name",
        "framework": "langchain",
        "specializations": ["food_security"],
        "email": "",
        "display_name": "",
        "soul_summary": "",
        "model_provider": "",
        "model_name": "",
    }
    return {**fields, **overrides}


@pytest.mark.parametrize(
    "username",
    ["abc", "x" * 100, "river_watch-2", "9lives"],
)
def test_valid_usernames_pass(username: str) -> None:
    assert validate_registration(**_registration(username=username)).username == username


def test_registration_normalizes_email_and_strips_text() -> None:
    new = validate_registration(
        **_registration(email="Someone@EXAMPLE.org", display_name="  Spaced  ")
    )
    assert new.email == "Someone@example.org"
    assert new.display_name == "Spaced"


def test_changes_distinguish_unset_from_empty() -> None:
    changes = validate_changes(
        display_name=None,
        email="",
        soul_summary="new soul",
        model_provider=None,
        model_name=None,
        specializations=[],
    )
    assert changes.display_name is None
    assert changes.clear_email is True
    assert changes.soul_summary == "new soul"
    assert changes.specializations is None


def test_instructions_are_signed_canonical_json_with_expiry(deps: AgentDeps) -> None:
    signed = heartbeat.instructions(deps, AGENT)
    public = Ed25519PublicKey.from_public_bytes(deps.signer.published_keys()[0].public_key)
    public.verify(signed.signature, signed.payload)
    document = json.loads(signed.payload)
    assert signed.payload == json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    assert document["issuedAt"] == "2026-11-21T12:00:00Z"
    assert document["expiresAt"] == "2026-11-21T13:00:00Z"
    assert document["agentId"] == AGENT.id
    assert len(document["nonce"]) == 32


def test_rotation_publishes_both_keys_and_signs_with_the_current(deps: AgentDeps) -> None:
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    rotated = replace(deps, signer=HeartbeatSigner(new, previous=old))
    keys = rotated.signer.published_keys()
    assert [k.status for k in keys] == ["current", "previous"]
    signed = heartbeat.instructions(rotated, AGENT)
    assert signed.key_id == keys[0].key_id
    Ed25519PublicKey.from_public_bytes(keys[0].public_key).verify(signed.signature, signed.payload)


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [
        (timedelta(0), True),
        (timedelta(minutes=5), True),
        (timedelta(minutes=-5), True),
        (timedelta(minutes=5, seconds=1), False),
        (timedelta(minutes=-5, seconds=-1), False),
    ],
)
def test_checkin_skew_boundary(deps: AgentDeps, offset: timedelta, accepted: bool) -> None:
    call = lambda: heartbeat.validate_checkin(  # noqa: E731
        deps, timestamp=NOW + offset, instructions_version="", activity={}, client_version=""
    )
    if accepted:
        call()
    else:
        with pytest.raises(InvalidArgument) as info:
            call()
        assert [v.field for v in info.value.violations] == ["timestamp"]


@pytest.mark.parametrize(
    ("email", "masked"),
    [("sentinel@example.org", "s***@example.org"), ("a@b.co", "a***@b.co")],
)
def test_masked_email(email: str, masked: str) -> None:
    assert mask_email(email) == masked
