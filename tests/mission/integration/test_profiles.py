"""Humans' profiles over real gRPC: create, read, partial updates, every bad field named, one
profile per human, and only humans (with their own token) may call."""

from __future__ import annotations

from collections.abc import Sequence

import grpc
import pytest
from betterworld.mission.v1 import profile_pb2 as pb
from betterworld.mission.v1 import profile_pb2_grpc as pb_grpc
from google.protobuf.message import Message

from services.core.credentials import store as credentials
from services.core.credentials.keys import OPERATOR_KEY_PREFIX, generate_key
from services.mission.profiles import SUGGESTIONS
from tests.support.helpers import RunningService, bearer, unpack
from tests.support.humans import Humans

Metadata = Sequence[tuple[str, str]]


@pytest.fixture
def profiles(mission_service: RunningService) -> pb_grpc.ProfileServiceStub:
    return pb_grpc.ProfileServiceStub(mission_service.channel)


@pytest.fixture
async def human(mission_service: RunningService) -> Metadata:
    """A verified human's access token, as call metadata."""
    tokens = await Humans(mission_service).verified("maya@example.org")
    return bearer(tokens.access_token)


def _oakland(**fields: object) -> pb.CreateProfileRequest:
    request = pb.CreateProfileRequest(
        skills=["data_collection"],
        languages=["en"],
        city="Oakland",
        country="US",
        latitude=37.80,
        longitude=-122.27,
        service_radius_km=20,
    )
    for name, value in fields.items():
        if isinstance(value, list):
            getattr(request, name)[:] = value
        elif isinstance(value, Message):
            getattr(request, name).CopyFrom(value)
        else:
            setattr(request, name, value)
    return request


async def _error(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call  # type: ignore[misc]
    return info.value


async def test_create_then_get_with_completeness_and_suggestions(
    profiles: pb_grpc.ProfileServiceStub, human: Metadata
) -> None:
    call = profiles.CreateProfile(_oakland(), metadata=human)
    created = await call
    # The edge answers 201 for this header (RegisterHuman's convention).
    assert ("x-http-status", "201") in tuple(await call.initial_metadata())
    assert list(created.skills) == ["data_collection"] and list(created.languages) == ["en"]
    assert (created.city, created.country, created.service_radius_km) == ("Oakland", "US", 20)
    assert (created.latitude, created.longitude) == (37.80, -122.27)
    assert not created.HasField("availability") and created.bio == ""
    assert created.completeness == 25 + 15 + 20 + 5 + 5
    assert list(created.suggestions) == [SUGGESTIONS["availability"], SUGGESTIONS["bio"]]
    assert created.human_id and created.created_at.seconds and created.updated_at.seconds

    fetched = await profiles.GetProfile(pb.GetProfileRequest(), metadata=human)
    assert fetched == created


async def test_lists_and_codes_are_normalized_and_the_radius_defaults_to_10(
    profiles: pb_grpc.ProfileServiceStub, human: Metadata
) -> None:
    created = await profiles.CreateProfile(
        pb.CreateProfileRequest(
            skills=[" First aid ", "first AID", "Translation", "first aid"],
            languages=["EN", "es", "en"],
            country="us",
            bio="  Nurse, weekends only.  ",
            availability=pb.Availability(weekends=True, timezone="America/Los_Angeles"),
        ),
        metadata=human,
    )
    assert list(created.skills) == ["First aid", "Translation"]
    assert list(created.languages) == ["en", "es"]
    assert created.country == "US" and created.bio == "Nurse, weekends only."
    assert created.service_radius_km == 10
    assert not created.HasField("latitude") and not created.HasField("longitude")
    assert created.availability == pb.Availability(
        weekdays=False, weekends=True, timezone="America/Los_Angeles"
    )
    assert created.completeness == 25 + 15 + 5 + 15 + 15
    assert list(created.suggestions) == [SUGGESTIONS["coordinates"], SUGGESTIONS["city"]]


async def test_update_changes_only_the_fields_sent(
    profiles: pb_grpc.ProfileServiceStub, human: Metadata
) -> None:
    created = await profiles.CreateProfile(_oakland(), metadata=human)

    bio = await profiles.UpdateProfile(
        pb.UpdateProfileRequest(bio="I map streams.", service_radius_km=50), metadata=human
    )
    assert bio.bio == "I map streams." and bio.service_radius_km == 50
    # Untouched: lists (empty means not sent), city, country, coordinates.
    assert list(bio.skills) == ["data_collection"] and list(bio.languages) == ["en"]
    assert (bio.city, bio.country, bio.latitude, bio.longitude) == (
        "Oakland",
        "US",
        37.80,
        -122.27,
    )
    assert bio.completeness == created.completeness + 15
    assert bio.updated_at.ToDatetime() >= created.updated_at.ToDatetime()

    moved = await profiles.UpdateProfile(
        pb.UpdateProfileRequest(
            skills=["tree_planting", "Data collection"],
            languages=["fr"],
            city="",
            country="fr",
            latitude=48.85,
            longitude=2.35,
            availability=pb.Availability(weekdays=True, timezone="Europe/Paris"),
        ),
        metadata=human,
    )
    assert list(moved.skills) == ["tree_planting", "Data collection"]
    assert list(moved.languages) == ["fr"]
    assert (moved.city, moved.country, moved.latitude, moved.longitude) == ("", "FR", 48.85, 2.35)
    assert moved.availability.timezone == "Europe/Paris" and moved.availability.weekdays
    assert moved.completeness == 100 - 5
    assert list(moved.suggestions) == [SUGGESTIONS["city"]]

    cleared = await profiles.UpdateProfile(
        pb.UpdateProfileRequest(clear_location=True, bio=""), metadata=human
    )
    assert not cleared.HasField("latitude") and not cleared.HasField("longitude")
    assert cleared.bio == "" and cleared.country == "FR"
    assert cleared.completeness == 100 - 5 - 20 - 15

    unchanged = await profiles.UpdateProfile(pb.UpdateProfileRequest(), metadata=human)
    assert unchanged == cleared
    assert unchanged == await profiles.GetProfile(pb.GetProfileRequest(), metadata=human)


async def test_every_bad_field_is_named_at_once(
    profiles: pb_grpc.ProfileServiceStub, human: Metadata
) -> None:
    request = pb.CreateProfileRequest(
        skills=[f"skill {n}" for n in range(51)],
        languages=["en", "xx"],
        country="USA",
        latitude=37.8,
        service_radius_km=4,
        availability=pb.Availability(weekends=True, timezone="Mars/Base"),
        city="x" * 201,
        bio="y" * 501,
    )
    error = unpack(await _error(profiles.CreateProfile(request, metadata=human)))
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(error.field_violations) == {
        "skills",
        "languages",
        "country",
        "longitude",
        "service_radius_km",
        "availability.timezone",
        "city",
        "bio",
    }
    assert '"xx"' in error.field_violations["languages"]

    # Each check alone, on create and on update.
    cases: list[tuple[dict[str, object], str]] = [
        ({"languages": ["xx"]}, "languages"),
        ({"country": "USA"}, "country"),
        ({"service_radius_km": 4}, "service_radius_km"),
        ({"service_radius_km": 51}, "service_radius_km"),
        ({"skills": [f"s{n}" for n in range(51)]}, "skills"),
        ({"skills": ["ok", "  "]}, "skills"),
        ({"skills": ["k" * 101]}, "skills"),
        ({"languages": [f"l{n}" for n in range(21)]}, "languages"),
        ({"availability": pb.Availability(timezone="Mars/Base")}, "availability.timezone"),
        ({"availability": pb.Availability(weekdays=True)}, "availability.timezone"),
        ({"bio": "nul\x00"}, "bio"),
    ]
    for fields, field in cases:
        created = unpack(await _error(profiles.CreateProfile(_oakland(**fields), metadata=human)))
        assert set(created.field_violations) == {field}, fields
    lonely = pb.CreateProfileRequest(skills=["a"], languages=["en"], latitude=37.8)
    only_latitude = unpack(await _error(profiles.CreateProfile(lonely, metadata=human)))
    assert set(only_latitude.field_violations) == {"longitude"}
    empty = pb.CreateProfileRequest()
    required = unpack(await _error(profiles.CreateProfile(empty, metadata=human)))
    assert set(required.field_violations) == {"skills", "languages"}
    far = unpack(
        await _error(
            profiles.CreateProfile(_oakland(latitude=91.0, longitude=-181.0), metadata=human)
        )
    )
    assert set(far.field_violations) == {"latitude", "longitude"}

    await profiles.CreateProfile(_oakland(), metadata=human)
    for update, field in [
        (pb.UpdateProfileRequest(languages=["xx"]), "languages"),
        (pb.UpdateProfileRequest(country="USA"), "country"),
        (pb.UpdateProfileRequest(latitude=10.0), "longitude"),
        (pb.UpdateProfileRequest(service_radius_km=4), "service_radius_km"),
        (pb.UpdateProfileRequest(service_radius_km=51), "service_radius_km"),
        (pb.UpdateProfileRequest(skills=[f"s{n}" for n in range(51)]), "skills"),
        (
            pb.UpdateProfileRequest(availability=pb.Availability(timezone="Mars/Base")),
            "availability.timezone",
        ),
        (
            pb.UpdateProfileRequest(clear_location=True, latitude=1.0, longitude=1.0),
            "clear_location",
        ),
    ]:
        changed = unpack(await _error(profiles.UpdateProfile(update, metadata=human)))
        assert changed.code == grpc.StatusCode.INVALID_ARGUMENT
        assert set(changed.field_violations) == {field}, update
    # Nothing was applied by the refused updates.
    kept = await profiles.GetProfile(pb.GetProfileRequest(), metadata=human)
    assert (kept.country, kept.service_radius_km, kept.latitude) == ("US", 20, 37.80)


async def test_one_profile_per_human_and_none_before_create(
    mission_service: RunningService, profiles: pb_grpc.ProfileServiceStub, human: Metadata
) -> None:
    for call in (
        profiles.GetProfile(pb.GetProfileRequest(), metadata=human),
        profiles.UpdateProfile(pb.UpdateProfileRequest(bio="early"), metadata=human),
        profiles.UpdateProfile(pb.UpdateProfileRequest(), metadata=human),
    ):
        missing = unpack(await _error(call))
        assert (missing.code, missing.reason) == (grpc.StatusCode.NOT_FOUND, "PROFILE_NOT_FOUND")

    await profiles.CreateProfile(_oakland(), metadata=human)
    again = unpack(await _error(profiles.CreateProfile(_oakland(city="Berkeley"), metadata=human)))
    assert (again.code, again.reason) == (grpc.StatusCode.ALREADY_EXISTS, "PROFILE_EXISTS")
    assert (await profiles.GetProfile(pb.GetProfileRequest(), metadata=human)).city == "Oakland"

    # Another human sees only their own (none yet).
    other = await Humans(mission_service).verified("otto@example.org")
    theirs = unpack(
        await _error(
            profiles.GetProfile(pb.GetProfileRequest(), metadata=bearer(other.access_token))
        )
    )
    assert theirs.reason == "PROFILE_NOT_FOUND"


async def test_only_humans_with_a_token_may_call(
    mission_service: RunningService, profiles: pb_grpc.ProfileServiceStub
) -> None:
    key = generate_key(OPERATOR_KEY_PREFIX)
    await credentials.create_operator(
        mission_service.runtime.engine,
        name="ops-profiles",
        digest=key.digest,
        display_prefix=key.display_prefix,
    )
    operator = bearer(key.plaintext)
    for call in (
        profiles.CreateProfile(_oakland(), metadata=operator),
        profiles.GetProfile(pb.GetProfileRequest(), metadata=operator),
        profiles.UpdateProfile(pb.UpdateProfileRequest(bio="x"), metadata=operator),
    ):
        denied = unpack(await _error(call))
        assert (denied.code, denied.reason) == (grpc.StatusCode.PERMISSION_DENIED, "HUMAN_REQUIRED")
    for call in (
        profiles.CreateProfile(_oakland()),
        profiles.GetProfile(pb.GetProfileRequest()),
        profiles.UpdateProfile(pb.UpdateProfileRequest(bio="x")),
    ):
        anonymous = unpack(await _error(call))
        assert (anonymous.code, anonymous.reason) == (
            grpc.StatusCode.UNAUTHENTICATED,
            "TOKEN_MISSING",
        )
