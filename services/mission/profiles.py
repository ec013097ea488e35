"""Humans' profiles: create, read and change one's own, and how complete it is."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from services.core import errors
from services.core.context import Principal
from services.core.logging import get_logger
from services.mission.deps import MissionDeps
from services.mission.model import Availability, ProfileChanges, ProfileRecord
from services.mission.validation import valid_new_profile, valid_profile_changes

log = get_logger(__name__)

# Each part of a profile, its weight in the completeness score (they add up to 100) and the
# hint shown while it is missing. Skills and languages are required, so a profile scores at
# least 40; their hints stay for completeness of the function.
WEIGHTS = {
    "skills": 25,
    "languages": 15,
    "coordinates": 20,
    "city": 5,
    "country": 5,
    "availability": 15,
    "bio": 15,
}
SUGGESTIONS = {
    "skills": "Add your skills so missions that need them can find you",
    "languages": "Add the languages you speak",
    "coordinates": "Add your location so nearby missions can find you",
    "city": "Add your city",
    "country": "Add your country",
    "availability": "Add when you are available (weekdays, weekends, time zone)",
    "bio": "Add a short bio so mission organizers know who you are",
}


@dataclass(frozen=True)
class Completeness:
    """How complete a profile is: 0 to 100, and one hint per missing part."""

    score: int
    suggestions: tuple[str, ...]


def completeness(profile: ProfileRecord) -> Completeness:
    """The profile's score (the weights of the parts it has) and hints for the parts it lacks,
    in the order of `WEIGHTS`."""
    present = {
        "skills": bool(profile.skills),
        "languages": bool(profile.languages),
        "coordinates": profile.latitude is not None and profile.longitude is not None,
        "city": bool(profile.city),
        "country": bool(profile.country),
        "availability": profile.availability is not None,
        "bio": bool(profile.bio),
    }
    return Completeness(
        score=sum(weight for part, weight in WEIGHTS.items() if present[part]),
        suggestions=tuple(SUGGESTIONS[part] for part in WEIGHTS if not present[part]),
    )


def _not_found(principal: Principal) -> errors.NotFound:
    return errors.NotFound("profile", principal.id, reason="PROFILE_NOT_FOUND")


async def create_profile(
    deps: MissionDeps,
    principal: Principal,
    *,
    skills: Sequence[str],
    languages: Sequence[str],
    city: str,
    country: str,
    latitude: float | None,
    longitude: float | None,
    service_radius_km: int | None,
    availability: Availability | None,
    bio: str,
) -> ProfileRecord:
    """The caller's new profile; ALREADY_EXISTS when they have one."""
    new = valid_new_profile(
        skills=skills,
        languages=languages,
        city=city,
        country=country,
        latitude=latitude,
        longitude=longitude,
        service_radius_km=service_radius_km,
        availability=availability,
        bio=bio,
    )
    profile = await deps.profiles.insert(principal.id, new)
    if profile is None:
        raise errors.AlreadyExists(
            "you already have a profile; change it with UpdateProfile", reason="PROFILE_EXISTS"
        )
    log.info("human_profile_created", human_id=principal.id)
    return profile


async def get_profile(deps: MissionDeps, principal: Principal) -> ProfileRecord:
    """The caller's profile; NOT_FOUND before they create one."""
    profile = await deps.profiles.get(principal.id)
    if profile is None:
        raise _not_found(principal)
    return profile


async def update_profile(
    deps: MissionDeps,
    principal: Principal,
    *,
    skills: Sequence[str],
    languages: Sequence[str],
    city: str | None,
    country: str | None,
    latitude: float | None,
    longitude: float | None,
    clear_location: bool,
    service_radius_km: int | None,
    availability: Availability | None,
    bio: str | None,
) -> ProfileRecord:
    """Changes the fields sent (see `valid_profile_changes`); NOT_FOUND before the caller
    creates a profile."""
    changes = valid_profile_changes(
        skills=skills,
        languages=languages,
        city=city,
        country=country,
        latitude=latitude,
        longitude=longitude,
        clear_location=clear_location,
        service_radius_km=service_radius_km,
        availability=availability,
        bio=bio,
    )
    # Nothing sent: the profile as it is, without touching updated_at.
    if changes == ProfileChanges():
        return await get_profile(deps, principal)
    profile = await deps.profiles.update(principal.id, changes)
    if profile is None:
        raise _not_found(principal)
    return profile
