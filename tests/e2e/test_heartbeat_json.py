"""Heartbeat over JSON: signed instructions a client verifies, check-ins with clock-skew rules."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tests.support.e2e_http import ME, service_error

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

NewAgent = Callable[..., dict[str, Any]]
INSTRUCTIONS = "/api/v1/heartbeat/instructions"
KEYS = "/api/v1/heartbeat/keys"
CHECKIN = "/api/v1/heartbeat/checkin"


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def test_instructions_verify_with_the_published_key(
    http: httpx.Client, new_agent: NewAgent
) -> None:
    agent = new_agent("hb")
    response = http.get(INSTRUCTIONS, headers=agent["auth"])
    assert response.status_code == 200, response.text
    signed = response.json()
    assert signed["algorithm"] == "Ed25519"
    payload = base64.b64decode(signed["payload"])
    signature = base64.b64decode(signed["signature"])

    keys = http.get(KEYS)  # public: no key needed
    assert keys.status_code == 200, keys.text
    published = {k["keyId"]: k for k in keys.json()["keys"]}
    assert keys.json()["keys"][0]["status"] == "current"
    key = published[signed["keyId"]]
    assert key["algorithm"] == "Ed25519"
    public_key = Ed25519PublicKey.from_public_bytes(base64.b64decode(key["publicKey"]))

    public_key.verify(signature, payload)  # raises when the bytes were not signed by it
    with pytest.raises(InvalidSignature):
        public_key.verify(signature, payload.replace(b'"nonce":"', b'"nonce":"0'))

    # Only after verifying: parse the exact bytes.
    instructions = json.loads(payload)
    assert set(instructions) >= {
        "agentId",
        "expiresAt",
        "instructions",
        "issuedAt",
        "nonce",
        "version",
    }
    assert instructions["agentId"] == agent["agentId"]
    issued = datetime.fromisoformat(instructions["issuedAt"])
    expires = datetime.fromisoformat(instructions["expiresAt"])
    assert issued < expires
    assert abs(datetime.now(UTC) - issued) < timedelta(minutes=5)
    # Canonical JSON: sorted keys, no spaces.
    assert payload == json.dumps(
        instructions, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")

    again = http.get(INSTRUCTIONS, headers=agent["auth"]).json()
    assert json.loads(base64.b64decode(again["payload"]))["nonce"] != instructions["nonce"]


def test_instructions_need_an_agent_key(http: httpx.Client) -> None:
    service_error(http.get(INSTRUCTIONS), 401, "API_KEY_MISSING")
    service_error(
        http.post(CHECKIN, json={"timestamp": rfc3339(datetime.now(UTC))}), 401, "API_KEY_MISSING"
    )


def test_checkin_with_a_current_timestamp_is_recorded(
    http: httpx.Client, new_agent: NewAgent
) -> None:
    agent = new_agent("checkin")
    assert "lastHeartbeatAt" not in http.get(ME, headers=agent["auth"]).json()
    response = http.post(
        CHECKIN,
        headers=agent["auth"],
        json={
            "timestamp": rfc3339(datetime.now(UTC)),
            "instructionsVersion": "2026-11-01",
            "activitySummary": {"problemsReviewed": 3, "notes": "looked around"},
            "clientVersion": "e2e/1.0",
        },
    )
    assert response.status_code == 200, response.text
    accepted = response.json()
    assert accepted["checkinId"]
    assert accepted["currentInstructionsVersion"]
    assert datetime.fromisoformat(accepted["nextCheckinRecommended"]) > datetime.now(UTC)
    me = http.get(ME, headers=agent["auth"]).json()
    last = datetime.fromisoformat(me["lastHeartbeatAt"])
    assert abs(datetime.now(UTC) - last) < timedelta(minutes=1)


@pytest.mark.parametrize("skew", [timedelta(minutes=-10), timedelta(minutes=10)])
def test_checkin_with_a_skewed_timestamp_is_400_naming_timestamp(
    http: httpx.Client, new_agent: NewAgent, skew: timedelta
) -> None:
    agent = new_agent("skew")
    response = http.post(
        CHECKIN, headers=agent["auth"], json={"timestamp": rfc3339(datetime.now(UTC) + skew)}
    )
    error = service_error(response, 400, "INVALID_ARGUMENT")
    assert set(error.field_violations) == {"timestamp"}
    assert "lastHeartbeatAt" not in http.get(ME, headers=agent["auth"]).json()


def test_checkin_without_timestamp_is_400_naming_timestamp(
    http: httpx.Client, new_agent: NewAgent
) -> None:
    agent = new_agent("nots")
    error = service_error(
        http.post(CHECKIN, headers=agent["auth"], json={}), 400, "INVALID_ARGUMENT"
    )
    assert set(error.field_violations) == {"timestamp"}
