"""gRPC adapter of ActivityService: the live feed, from the process's ActivityHub."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
from betterworld.mission.v1 import activity_pb2 as pb
from betterworld.mission.v1 import activity_pb2_grpc as pb_grpc
from google.protobuf import struct_pb2

from services.core import errors
from services.core.activity import ActivityEvent, ActivityHub
from services.core.context import PrincipalKind, current_principal, send_stream_headers
from services.core.convert import timestamp

Context = grpc.aio.ServicerContext
HEARTBEAT_SECONDS = 20.0


def event_message(event: ActivityEvent) -> pb.ActivityEvent:
    """An event as the feed sends it."""
    data = struct_pb2.Struct()
    data.update(event.data)
    return pb.ActivityEvent(
        event_id=event.id,
        type=pb.ActivityType.Value(event.type),
        occurred_at=timestamp(event.occurred_at),
        data=data,
        private=bool(event.audience),
        gap=event.gap,
    )


def _types(values: list[int]) -> frozenset[str]:
    names = set()
    for value in values:
        if value not in pb.ActivityType.values() or value in (
            pb.ACTIVITY_TYPE_UNSPECIFIED,
            pb.HEARTBEAT,
        ):
            raise errors.InvalidArgument.one("types", f"{value} is not an event type to follow")
        names.add(pb.ActivityType.Name(pb.ActivityType.ValueType(value)))
    return frozenset(names)


class ActivityServicer(pb_grpc.ActivityServiceServicer):
    """ActivityService: WatchEvents."""

    def __init__(self, hub: ActivityHub, stopping: asyncio.Event) -> None:
        self._hub = hub
        self._stopping = stopping

    async def WatchEvents(  # noqa: N802
        self, request: pb.WatchEventsRequest, context: Context
    ) -> AsyncIterator[pb.ActivityEvent]:
        types = _types(list(request.types))
        principal = current_principal()
        viewer = principal.id if principal and principal.kind is PrincipalKind.HUMAN else ""
        try:
            subscription = self._hub.subscribe(
                after=request.after or None, types=types, viewer=viewer
            )
        except ValueError:
            raise errors.InvalidArgument.one(
                "after", "must be an event id from this feed (e.g. 1733580000000-0)"
            ) from None
        stopping: asyncio.Future[Any] = asyncio.ensure_future(self._stopping.wait())
        following: asyncio.Future[Any] | None = None
        try:
            async with subscription as events:
                await send_stream_headers(context)
                iterator = aiter(events)
                while True:
                    # The pending read survives heartbeats: it is never cancelled mid-way.
                    if following is None:
                        following = asyncio.ensure_future(anext(iterator))
                    done, _ = await asyncio.wait(
                        {following, stopping},
                        timeout=HEARTBEAT_SECONDS,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                    if following in done:
                        event, following = following.result(), None
                        yield event_message(event)
                    elif stopping in done:
                        raise errors.Unavailable(
                            "the service is restarting: reconnect with after="
                            f"{events.last_id or request.after}",
                            reason="RESTARTING",
                            retry_after_seconds=1,
                        )
                    else:
                        yield pb.ActivityEvent(type=pb.HEARTBEAT)
        finally:
            for task in (following, stopping):
                if task is not None:
                    task.cancel()
