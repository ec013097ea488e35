"""Signed heartbeat instructions and check-ins over real gRPC."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from betterworld.agent.v1 import agent_pb2 as pb
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import select

from services.agent.tables import agents, heartbeat_checkins
from tests.support.agents import register
from tests.support.helpers import RunningService, bearer, unpack


def _ts(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


async def test_instructions_verify_against_the_published_key(
    agent_service: RunningService,
) -> None:
    reg = await register(agent_service, "beat-agent")
    signed = await agent_service.heartbeat.GetHeartbeatInstructions(
        pb.GetHeartbeatInstructionsRequest(), metadata=bearer(reg.api_key)
    )
    keys = await agent_service.heartbeat.ListHeartbeatKeys(pb.ListHeartbeatKeysRequest())
    key = next(k for k in keys.keys if k.key_id == signed.key_id)
    assert key.status == "current"
    Ed25519PublicKey.from_public_bytes(key.public_key).verify(signed.signature, signed.payload)
    document = json.loads(signed.payload)
    assert document["agentId"] == reg.agent_id
    assert set(document) == {"agentId", "expiresAt", "instructions", "issuedAt", "nonce", "version"}
    issued = datetime.fromisoformat(document["issuedAt"])
    assert datetime.fromisoformat(document["expiresAt"]) - issued == timedelta(hours=1)
    # One flipped byte and the signature no longer verifies.
    tampered = bytearray(signed.payload)
    tampered[10] ^= 1
    with pytest.raises(InvalidSignature):
        Ed25519PublicKey.from_public_bytes(key.public_key).verify(signed.signature, bytes(tampered))


async def test_each_instruction_carries_a_fresh_nonce(agent_service: RunningService) -> None:
    reg = await register(agent_service, "nonce-agent")
    first, second = [
        json.loads(
            (
                await agent_service.heartbeat.GetHeartbeatInstructions(
                    pb.GetHeartbeatInstructionsRequest(), metadata=bearer(reg.api_key)
                )
            ).payload
        )["nonce"]
        for _ in range(2)
    ]
    assert first != second


async def test_checkin_stores_activity_and_moves_last_heartbeat(
    agent_service: RunningService,
) -> None:
    reg = await register(agent_service, "checker")
    response = await agent_service.heartbeat.Checkin(
        pb.CheckinRequest(
            timestamp=_ts(datetime.now(UTC)),
            instructions_version="2026-11-01",
            activity_summary=pb.ActivitySummary(problems_reviewed=4, notes="looked at rivers"),
            client_version="1.2.3",
        ),
        metadata=bearer(reg.api_key),
    )
    assert response.current_instructions_version == "2026-11-01"
    async with agent_service.runtime.engine.connect() as conn:
        stored = (await conn.execute(select(heartbeat_checkins))).one()
        last = (await conn.execute(select(agents.c.last_heartbeat_at))).scalar_one()
    assert stored.activity_summary["problems_reviewed"] == 4
    assert stored.activity_summary["notes"] == "looked at rivers"
    assert stored.client_version == "1.2.3"
    assert last is not None
    next_at = response.next_checkin_recommended.ToDatetime(tzinfo=UTC)
    assert next_at - last == timedelta(minutes=30)


@pytest.mark.parametrize(
    ("skew", "ok"),
    [
        (timedelta(minutes=4), True),
        (timedelta(minutes=-4), True),
        (timedelta(minutes=6), False),
        (timedelta(minutes=-6), False),
    ],
)
async def test_checkin_allows_five_minutes_of_clock_skew(
    agent_service: RunningService, skew: timedelta, ok: bool
) -> None:
    reg = await register(agent_service, "skewed")
    call = agent_service.heartbeat.Checkin(
        pb.CheckinRequest(timestamp=_ts(datetime.now(UTC) + skew)), metadata=bearer(reg.api_key)
    )
    if ok:
        await call
        return
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    assert unpack(info.value).field_violations.keys() == {"timestamp"}


async def test_checkin_rejects_missing_timestamp_and_negative_counts(
    agent_service: RunningService,
) -> None:
    reg = await register(agent_service, "sloppy")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await agent_service.heartbeat.Checkin(
            pb.CheckinRequest(activity_summary=pb.ActivitySummary(solutions_proposed=-1)),
            metadata=bearer(reg.api_key),
        )
    assert unpack(info.value).field_violations.keys() == {
        "timestamp",
        "activity_summary.solutions_proposed",
    }
