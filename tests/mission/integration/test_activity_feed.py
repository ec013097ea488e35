"""The activity feed over real gRPC and real Valkey: public events without private data, a
human's own events to that human only, type filters, resuming after an id, and a stream that
survives the service's graceful restart by reconnecting with its last id."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable

import grpc
import pytest
from betterworld.mission.v1 import activity_pb2 as pb
from betterworld.mission.v1 import activity_pb2_grpc, evidence_pb2

from services.core.activity import publish
from services.core.settings import Settings
from services.mission.definition import DEFINITION as MISSION
from tests.support.evidence import EvidenceWorld, operator_auth
from tests.support.helpers import start_service, unpack
from tests.support.missions import MissionWorld

REASON = "The photo shows the labelled bottles at the marked point."


def _feed(world: MissionWorld) -> activity_pb2_grpc.ActivityServiceStub:
    return activity_pb2_grpc.ActivityServiceStub(world.service.channel)


class Reader:
    """A WatchEvents stream read in the background into a list."""

    def __init__(self, call: grpc.aio.UnaryStreamCall) -> None:
        self.call = call
        self.events: list[pb.ActivityEvent] = []
        self.error: grpc.aio.AioRpcError | None = None
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for event in self.call:
                if event.type != pb.HEARTBEAT:
                    self.events.append(event)
        except grpc.aio.AioRpcError as exc:
            self.error = exc

    async def until(
        self, done: Callable[[list[pb.ActivityEvent]], bool], seconds: float = 5
    ) -> None:
        deadline = time.monotonic() + seconds
        while not done(self.events):
            assert time.monotonic() < deadline, [e.type for e in self.events]
            await asyncio.sleep(0.02)

    def types(self) -> list[str]:
        return [pb.ActivityType.Name(e.type) for e in self.events]

    async def close(self) -> None:
        self.call.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def _started(reader: Reader) -> Reader:
    await reader.call.wait_for_connection()
    await asyncio.sleep(0.2)  # the subscription registers with the hub
    return reader


async def test_public_events_carry_no_private_data_and_private_ones_reach_one_human(
    mission_world: MissionWorld,
) -> None:
    ew = EvidenceWorld(mission_world)
    agent, solution_id = await mission_world.agent_with_solution()
    human = await mission_world.human()
    other = await mission_world.human()
    feed = _feed(mission_world)
    anonymous = await _started(Reader(feed.WatchEvents(pb.WatchEventsRequest())))
    mine = await _started(Reader(feed.WatchEvents(pb.WatchEventsRequest(), metadata=human)))
    theirs = await _started(Reader(feed.WatchEvents(pb.WatchEventsRequest(), metadata=other)))
    claims_only = await _started(
        Reader(feed.WatchEvents(pb.WatchEventsRequest(types=[pb.MISSION_CLAIMED])))
    )
    try:
        mission = await mission_world.approved(agent, solution_id, token_reward=20)
        from betterworld.mission.v1 import missions_pb2

        await mission_world.missions.ClaimMission(
            missions_pb2.ClaimMissionRequest(mission_id=mission.mission_id), metadata=human
        )
        evidence = await ew.submit(mission.mission_id, human)
        operator = await operator_auth(mission_world)
        await ew.admin.ResolveDispute(
            evidence_pb2.ResolveDisputeRequest(
                evidence_id=evidence.evidence_id, decision=evidence_pb2.APPROVE, reasoning=REASON
            ),
            metadata=operator,
        )
        await mine.until(lambda es: any(e.type == pb.TOKENS_EARNED for e in es))
        await anonymous.until(lambda es: any(e.type == pb.EVIDENCE_VERIFIED for e in es))
        await asyncio.sleep(0.3)
        assert anonymous.types() == ["MISSION_PUBLISHED", "MISSION_CLAIMED", "EVIDENCE_VERIFIED"]
        assert mine.types() == [
            "MISSION_PUBLISHED",
            "MISSION_CLAIMED",
            "EVIDENCE_VERIFIED",
            "EVIDENCE_VERIFIED",
            "TOKENS_EARNED",
        ]
        assert theirs.types() == anonymous.types()
        assert claims_only.types() == ["MISSION_CLAIMED"]
        public = anonymous.events
        published = dict(public[0].data)
        assert published["missionId"] == mission.mission_id and published["tokenReward"] == 20
        assert published["latitude"] == round(mission.latitude, 2)
        for event in public:
            text = str(event.data)
            assert "humanId" not in text and evidence.evidence_id not in text
            assert not event.private
        private = [e for e in mine.events if e.private]
        assert dict(private[0].data)["evidenceId"] == evidence.evidence_id
        assert dict(private[0].data)["reward"] == 20
        assert dict(private[1].data) == {
            "amount": 20,
            "type": "EARN_MISSION",
            "referenceId": evidence.evidence_id,
        }
        ids = [e.event_id for e in mine.events]
        assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))
    finally:
        for reader in (anonymous, mine, theirs, claims_only):
            await reader.close()


async def test_resuming_after_an_id_gets_what_was_missed_and_bad_requests_are_named(
    mission_world: MissionWorld,
) -> None:
    redis = mission_world.service.runtime.redis
    first = await publish(redis, "MISSION_CLAIMED", {"missionId": "m1"})
    await publish(redis, "MISSION_CLAIMED", {"missionId": "m2"})
    await publish(redis, "TOKENS_EARNED", {"amount": 2}, audience="someone-else")
    await publish(redis, "MISSION_CLAIMED", {"missionId": "m3"})
    feed = _feed(mission_world)
    resumed = Reader(feed.WatchEvents(pb.WatchEventsRequest(after=first)))
    try:
        await resumed.until(lambda es: len(es) == 2)
        assert [dict(e.data)["missionId"] for e in resumed.events] == ["m2", "m3"]
    finally:
        await resumed.close()
    for request, field in (
        (pb.WatchEventsRequest(after="yesterday"), "after"),
        (pb.WatchEventsRequest(types=[pb.HEARTBEAT]), "types"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            async for _ in feed.WatchEvents(request):
                pass
        error = unpack(info.value)
        assert error.code == grpc.StatusCode.INVALID_ARGUMENT and field in error.field_violations


async def test_a_stream_survives_a_graceful_restart_by_resuming_with_its_last_id(
    mission_world: MissionWorld, mission_settings: Settings
) -> None:
    settings = mission_settings.model_copy(update={"grace_seconds": 30})
    first = await start_service(dataclasses.replace(MISSION, background=None), settings)
    redis = mission_world.service.runtime.redis
    stub = activity_pb2_grpc.ActivityServiceStub(first.channel)
    reader = await _started(Reader(stub.WatchEvents(pb.WatchEventsRequest())))
    await publish(redis, "MISSION_CLAIMED", {"missionId": "before"})
    await reader.until(lambda es: len(es) == 1)
    started = time.monotonic()
    await first.server.stop(30)
    # The stream ended at once (not after the 30 s grace) and told the client to come back.
    assert time.monotonic() - started < 5
    await asyncio.wait_for(reader.task, 5)
    await first.channel.close()
    await first.runtime.close()
    assert reader.error is not None
    error = unpack(reader.error)
    assert (error.code, error.reason) == (grpc.StatusCode.UNAVAILABLE, "RESTARTING")
    last = reader.events[-1].event_id
    assert last in error.message
    await publish(redis, "MISSION_CLAIMED", {"missionId": "while-down"})
    second = await start_service(dataclasses.replace(MISSION, background=None), settings)
    try:
        stub = activity_pb2_grpc.ActivityServiceStub(second.channel)
        again = Reader(stub.WatchEvents(pb.WatchEventsRequest(after=last)))
        await again.until(lambda es: len(es) == 1)
        await publish(redis, "MISSION_CLAIMED", {"missionId": "after"})
        await again.until(lambda es: len(es) == 2)
        assert [dict(e.data)["missionId"] for e in again.events] == ["while-down", "after"]
        await again.close()
    finally:
        await second.stop()
