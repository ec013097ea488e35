"""gRPC adapter of ProfileService: unpack the request, call one domain function, pack."""

from __future__ import annotations

from typing import Any

import grpc
from betterworld.mission.v1 import profile_pb2 as pb
from betterworld.mission.v1 import profile_pb2_grpc as pb_grpc

from services.core.context import caller, set_response_header
from services.core.convert import timestamp
from services.mission import profiles
from services.mission.deps import MissionDeps
from services.mission.model import Availability, ProfileRecord

Context = grpc.aio.ServicerContext


def _sent(message: Any, name: str) -> Any:
    """A field with presence: its value when sent, else None."""
    return getattr(message, name) if message.HasField(name) else None


def _availability(message: Any) -> Availability | None:
    if not message.HasField("availability"):
        return None
    sent = message.availability
    return Availability(weekdays=sent.weekdays, weekends=sent.weekends, timezone=sent.timezone)


def profile_message(profile: ProfileRecord) -> pb.Profile:
    """A profile with its completeness, as its human sees it."""
    score = profiles.completeness(profile)
    availability = profile.availability
    return pb.Profile(
        human_id=profile.human_id,
        skills=profile.skills,
        languages=profile.languages,
        city=profile.city or "",
        country=profile.country or "",
        latitude=profile.latitude,
        longitude=profile.longitude,
        service_radius_km=profile.service_radius_km,
        availability=(
            pb.Availability(
                weekdays=availability.weekdays,
                weekends=availability.weekends,
                timezone=availability.timezone,
            )
            if availability is not None
            else None
        ),
        bio=profile.bio or "",
        completeness=score.score,
        suggestions=score.suggestions,
        created_at=timestamp(profile.created_at),
        updated_at=timestamp(profile.updated_at),
    )


class ProfileServicer(pb_grpc.ProfileServiceServicer):
    """ProfileService: a human's own profile."""

    def __init__(self, deps: MissionDeps) -> None:
        self._deps = deps

    async def CreateProfile(  # noqa: N802
        self, request: pb.CreateProfileRequest, context: Context
    ) -> pb.Profile:
        profile = await profiles.create_profile(
            self._deps,
            caller(),
            skills=list(request.skills),
            languages=list(request.languages),
            city=request.city,
            country=request.country,
            latitude=_sent(request, "latitude"),
            longitude=_sent(request, "longitude"),
            service_radius_km=_sent(request, "service_radius_km"),
            availability=_availability(request),
            bio=request.bio,
        )
        set_response_header("x-http-status", "201")
        return profile_message(profile)

    async def GetProfile(  # noqa: N802
        self, request: pb.GetProfileRequest, context: Context
    ) -> pb.Profile:
        profile = await profiles.get_profile(self._deps, caller())
        return profile_message(profile)

    async def UpdateProfile(  # noqa: N802
        self, request: pb.UpdateProfileRequest, context: Context
    ) -> pb.Profile:
        # Empty lists of skills or languages go through as they are: "not sent" (see the proto).
        profile = await profiles.update_profile(
            self._deps,
            caller(),
            skills=list(request.skills),
            languages=list(request.languages),
            city=_sent(request, "city"),
            country=_sent(request, "country"),
            latitude=_sent(request, "latitude"),
            longitude=_sent(request, "longitude"),
            clear_location=request.clear_location,
            service_radius_km=_sent(request, "service_radius_km"),
            availability=_availability(request),
            bio=_sent(request, "bio"),
        )
        return profile_message(profile)
