"""Every check of the mission service's input, in one place; each failure names its proto field."""

from __future__ import annotations

import functools
import math
import zoneinfo
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

import pycountry
from email_validator import EmailNotValidError, validate_email

from services.core.errors import clip
from services.core.ids import parse_uuid
from services.core.validation import Violations, check_required_text, check_text
from services.mission.model import (
    SPEND_TYPES,
    Availability,
    ClaimEdit,
    EvidenceItem,
    MissionDraft,
    MissionEdit,
    MissionFields,
    MissionQuery,
    NewHuman,
    NewProfile,
    ProfileChanges,
    Step,
)

PASSWORD_MIN, PASSWORD_MAX = 8, 128


def normalized_email(value: str, out: Violations, field: str = "email") -> str:
    """The address with its domain in lower case ("" after recording a violation)."""
    if not 3 <= len(value) <= 254:
        out.add(field, "must be 3 to 254 characters")
        return ""
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError:
        out.add(field, "is not a valid email address")
        return ""


def check_password(value: str, out: Violations) -> None:
    """8 to 128 characters with a lower-case letter, an upper-case letter and a digit."""
    if not PASSWORD_MIN <= len(value) <= PASSWORD_MAX:
        out.add("password", f"must be {PASSWORD_MIN} to {PASSWORD_MAX} characters")
    elif not (
        any(c.islower() for c in value)
        and any(c.isupper() for c in value)
        and any(c.isdigit() for c in value)
    ):
        out.add("password", "must contain a lower-case letter, an upper-case letter and a digit")
    elif "\x00" in value:
        out.add("password", "must not contain NUL characters")


def valid_registration(email: str, password: str, display_name: str) -> NewHuman:
    """A registration's fields checked, all bad ones reported at once."""
    out = Violations()
    normalized = normalized_email(email, out)
    check_password(password, out)
    name = display_name.strip()
    if not 2 <= len(name) <= 200:
        out.add("display_name", "must be 2 to 200 characters")
    else:
        check_text(name, out, "display_name", 200)
    out.raise_if_any()
    return NewHuman(email=normalized, password=password, display_name=name)


def valid_email(email: str) -> str:
    """The normalized email, or INVALID_ARGUMENT naming `email`."""
    out = Violations()
    normalized = normalized_email(email, out)
    out.raise_if_any()
    return normalized


def valid_verification(email: str, code: str) -> str:
    """The normalized email of a VerifyEmail request whose code is 6 digits."""
    out = Violations()
    normalized = normalized_email(email, out)
    if len(code) != 6 or not code.isdigit():
        out.add("code", "must be 6 digits")
    out.raise_if_any()
    return normalized


def valid_login(email: str, password: str) -> str:
    """The normalized email of a Login request with a password."""
    out = Violations()
    normalized = normalized_email(email, out)
    if not password:
        out.add("password", "is required")
    elif len(password) > PASSWORD_MAX:
        out.add("password", f"must be at most {PASSWORD_MAX} characters")
    out.raise_if_any()
    return normalized


def valid_reason(reason: str) -> str:
    """An operator's reason: at most 500 characters."""
    out = Violations()
    check_text(reason, out, "reason", 500)
    out.raise_if_any()
    return reason.strip()


SKILLS_MAX, SKILL_LENGTH_MAX = 50, 100
LANGUAGES_MAX = 20
CITY_MAX, BIO_MAX = 200, 500
RADIUS_MIN, RADIUS_MAX, RADIUS_DEFAULT = 5, 50, 10


@functools.cache
def _timezones() -> frozenset[str]:
    # available_timezones() walks tzdata on every call; the set is fixed while we run.
    return frozenset(zoneinfo.available_timezones())


def _shown(values: Sequence[str]) -> str:
    # Bad entries echoed back, few and short: errors travel as size-limited metadata.
    return ", ".join(f'"{clip(v, 20)}"' for v in values[:5])


def _two_letters(code: str) -> bool:
    # Codes are two ASCII letters; pycountry's lookup ignores letter case, not the shape.
    return len(code) == 2 and code.isascii() and code.isalpha()


def check_skills(values: Sequence[str], out: Violations) -> tuple[str, ...]:
    """1 to 50 entries of 1 to 100 characters once trimmed; repeats in any letter case are
    dropped, the first spelling and the order kept (() after recording a violation)."""
    if not 1 <= len(values) <= SKILLS_MAX:
        out.add("skills", f"must have 1 to {SKILLS_MAX} entries")
        return ()
    kept: dict[str, str] = {}
    for position, value in enumerate(values, start=1):
        skill = value.strip()
        entry = Violations()
        if not skill:
            entry.add("skills", "must not be empty")
        check_text(skill, entry, "skills", SKILL_LENGTH_MAX)
        if entry.items:
            # One violation per field: the first bad entry, by its position.
            out.add("skills", f"entry {position} {entry.items[0].description}")
            return ()
        kept.setdefault(skill.casefold(), skill)
    return tuple(kept.values())


def check_languages(values: Sequence[str], out: Violations) -> tuple[str, ...]:
    """1 to 20 ISO 639-1 codes in any letter case, returned in lower case without repeats
    (() after recording a violation)."""
    if not 1 <= len(values) <= LANGUAGES_MAX:
        out.add("languages", f"must have 1 to {LANGUAGES_MAX} entries")
        return ()
    codes: dict[str, None] = {}
    unknown: list[str] = []
    for value in values:
        code = value.strip().lower()
        if _two_letters(code) and pycountry.languages.get(alpha_2=code) is not None:
            codes[code] = None
        else:
            unknown.append(value)
    if unknown:
        out.add("languages", f'must be ISO 639-1 codes such as "en"; not {_shown(unknown)}')
        return ()
    return tuple(codes)


def check_country(value: str, out: Violations) -> str:
    """An ISO 3166-1 alpha-2 code in any letter case, returned in upper case; "" stays ""."""
    code = value.strip().upper()
    if not code:
        return ""
    if not _two_letters(code) or pycountry.countries.get(alpha_2=code) is None:
        out.add("country", 'must be an ISO 3166-1 alpha-2 code such as "US"')
        return ""
    return code


def check_radius(value: int, out: Violations) -> None:
    """5 to 50 km."""
    if not RADIUS_MIN <= value <= RADIUS_MAX:
        out.add("service_radius_km", f"must be {RADIUS_MIN} to {RADIUS_MAX}")


def check_availability(value: Availability, out: Violations) -> Availability:
    """The time zone is required and an IANA name (exact letter case, as tzdata spells it)."""
    timezone = value.timezone.strip()
    if not timezone:
        out.add("availability.timezone", "is required")
    elif timezone not in _timezones():
        out.add("availability.timezone", 'must be an IANA time zone such as "Europe/Paris"')
    return Availability(weekdays=value.weekdays, weekends=value.weekends, timezone=timezone)


def _trimmed(value: str, out: Violations, field: str, maximum: int) -> str:
    """Free text without its outer spaces, checked ("" stays "")."""
    text = value.strip()
    check_text(text, out, field, maximum)
    return text


def valid_new_profile(
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
) -> NewProfile:
    """A CreateProfile's fields checked, all bad ones reported at once; "" means not given."""
    out = Violations()
    new_skills = check_skills(skills, out)
    new_languages = check_languages(languages, out)
    new_city = _trimmed(city, out, "city", CITY_MAX)
    new_country = check_country(country, out)
    check_coordinates(latitude, longitude, out)
    radius = RADIUS_DEFAULT if service_radius_km is None else service_radius_km
    check_radius(radius, out)
    checked = check_availability(availability, out) if availability is not None else None
    new_bio = _trimmed(bio, out, "bio", BIO_MAX)
    out.raise_if_any()
    return NewProfile(
        skills=new_skills,
        languages=new_languages,
        city=new_city or None,
        country=new_country or None,
        latitude=latitude,
        longitude=longitude,
        service_radius_km=radius,
        availability=checked,
        bio=new_bio or None,
    )


def valid_profile_changes(
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
) -> ProfileChanges:
    """An UpdateProfile's sent fields checked, all bad ones reported at once. None is "not
    sent"; so is an empty list (a profile keeps at least one skill and one language); "" in a
    text field removes it."""
    out = Violations()
    new_skills = check_skills(skills, out) if skills else None
    new_languages = check_languages(languages, out) if languages else None
    new_city = _trimmed(city, out, "city", CITY_MAX) if city is not None else None
    new_country = check_country(country, out) if country is not None else None
    if clear_location and (latitude is not None or longitude is not None):
        out.add("clear_location", "cannot be sent with latitude and longitude")
    else:
        check_coordinates(latitude, longitude, out)
    if service_radius_km is not None:
        check_radius(service_radius_km, out)
    checked = check_availability(availability, out) if availability is not None else None
    new_bio = _trimmed(bio, out, "bio", BIO_MAX) if bio is not None else None
    out.raise_if_any()
    return ProfileChanges(
        skills=new_skills,
        languages=new_languages,
        city=new_city,
        country=new_country,
        latitude=latitude,
        longitude=longitude,
        clear_location=clear_location,
        service_radius_km=service_radius_km,
        availability=checked,
        bio=new_bio,
    )


DIFFICULTIES = ("beginner", "intermediate", "advanced", "expert")
EVIDENCE_TYPES = ("photo", "document", "video")
MAX_EXPIRY = timedelta(days=365)
DEFAULT_EXPIRY = timedelta(days=30)


def check_coordinates(
    latitude: float | None,
    longitude: float | None,
    out: Violations,
    names: tuple[str, str] = ("latitude", "longitude"),
) -> None:
    """Both or neither, finite and in range; violations under `names`."""
    lat_name, lng_name = names
    if (latitude is None) != (longitude is None):
        out.add(
            lat_name if latitude is None else lng_name,
            f"send both {lat_name} and {lng_name}, or neither",
        )
        return
    if latitude is not None and not (math.isfinite(latitude) and -90 <= latitude <= 90):
        out.add(lat_name, "must be between -90 and 90")
    if longitude is not None and not (math.isfinite(longitude) and -180 <= longitude <= 180):
        out.add(lng_name, "must be between -180 and 180")


def _check_steps(steps: tuple[Step, ...], out: Violations) -> None:
    if not 1 <= len(steps) <= 50:
        out.add("instructions", "must have 1 to 50 steps")
    for i, step in enumerate(steps):
        check_required_text(step.text, out, f"instructions[{i}].text", 1, 2000)


def _check_evidence(items: tuple[EvidenceItem, ...], out: Violations) -> None:
    if not 1 <= len(items) <= 20:
        out.add("evidence_required", "must have 1 to 20 items")
    for i, item in enumerate(items):
        if item.type not in EVIDENCE_TYPES:
            out.add(f"evidence_required[{i}].type", "must be PHOTO, DOCUMENT or VIDEO")
        check_required_text(item.description, out, f"evidence_required[{i}].description", 1, 500)


def _check_skills(skills: tuple[str, ...], out: Violations) -> tuple[str, ...]:
    if len(skills) > 20:
        out.add("required_skills", "must have at most 20 skills")
    cleaned: list[str] = []
    for i, skill in enumerate(skills):
        check_required_text(skill, out, f"required_skills[{i}]", 1, 100)
        if skill.strip().lower() not in cleaned:
            cleaned.append(skill.strip().lower())
    return tuple(cleaned)


def _check_range(value: int, out: Violations, field: str, low: int, high: int) -> None:
    if not low <= value <= high:
        out.add(field, f"must be between {low} and {high}")


def _check_expiry(expires_at: datetime, now: datetime, out: Violations) -> None:
    if expires_at <= now:
        out.add("expires_at", "must be in the future")
    elif expires_at > now + MAX_EXPIRY:
        out.add("expires_at", "must be at most a year ahead")


def valid_mission(draft: MissionDraft, now: datetime) -> MissionFields:
    """CreateMission's fields checked, every bad one named at once; defaults filled in."""
    out = Violations()
    if parse_uuid(draft.solution_id) is None:
        out.add("solution_id", "must be a solution id (UUID)")
    check_required_text(draft.title, out, "title", 1, 500)
    check_required_text(draft.description, out, "description", 10, 5000)
    _check_steps(draft.instructions, out)
    _check_evidence(draft.evidence_required, out)
    skills = _check_skills(draft.required_skills, out)
    check_coordinates(draft.latitude, draft.longitude, out, ("latitude", "longitude"))
    check_text(draft.location_name, out, "location_name", 200)
    radius = draft.location_radius_km or 5
    _check_range(radius, out, "location_radius_km", 1, 200)
    _check_range(draft.estimated_duration_minutes, out, "estimated_duration_minutes", 15, 10080)
    if draft.difficulty not in DIFFICULTIES:
        out.add("difficulty", "must be BEGINNER, INTERMEDIATE, ADVANCED or EXPERT")
    _check_range(draft.token_reward, out, "token_reward", 1, 10000)
    _check_range(draft.bonus_for_quality, out, "bonus_for_quality", 0, 10000)
    max_claims = draft.max_claims or 1
    _check_range(max_claims, out, "max_claims", 1, 100)
    expires_at = draft.expires_at or now + DEFAULT_EXPIRY
    _check_expiry(expires_at, now, out)
    out.raise_if_any()
    return MissionFields(
        title=draft.title.strip(),
        description=draft.description.strip(),
        instructions=tuple(
            Step(i + 1, s.text.strip(), s.optional) for i, s in enumerate(draft.instructions)
        ),
        evidence_required=tuple(
            EvidenceItem(e.type, e.description.strip(), e.required) for e in draft.evidence_required
        ),
        required_skills=skills,
        latitude=draft.latitude,
        longitude=draft.longitude,
        location_name=draft.location_name.strip(),
        location_radius_km=radius,
        estimated_duration_minutes=draft.estimated_duration_minutes,
        difficulty=draft.difficulty,
        token_reward=draft.token_reward,
        bonus_for_quality=draft.bonus_for_quality,
        max_claims=max_claims,
        expires_at=expires_at,
    )


def valid_edit(edit: MissionEdit, current: MissionFields, now: datetime) -> MissionFields:
    """The mission's fields with UpdateMission's changes, checked."""
    out = Violations()
    if edit.version < 1:
        out.add("version", "is required: send the version you read")
    fields = current
    if edit.title is not None:
        check_required_text(edit.title, out, "title", 1, 500)
        fields = replace(fields, title=edit.title.strip())
    if edit.description is not None:
        check_required_text(edit.description, out, "description", 10, 5000)
        fields = replace(fields, description=edit.description.strip())
    if edit.instructions:
        _check_steps(edit.instructions, out)
        steps = tuple(
            Step(i + 1, s.text.strip(), s.optional) for i, s in enumerate(edit.instructions)
        )
        fields = replace(fields, instructions=steps)
    if edit.evidence_required:
        _check_evidence(edit.evidence_required, out)
        fields = replace(fields, evidence_required=edit.evidence_required)
    if edit.required_skills:
        fields = replace(fields, required_skills=_check_skills(edit.required_skills, out))
    if edit.estimated_duration_minutes is not None:
        _check_range(edit.estimated_duration_minutes, out, "estimated_duration_minutes", 15, 10080)
        fields = replace(fields, estimated_duration_minutes=edit.estimated_duration_minutes)
    if edit.token_reward is not None:
        _check_range(edit.token_reward, out, "token_reward", 1, 10000)
        fields = replace(fields, token_reward=edit.token_reward)
    if edit.max_claims is not None:
        _check_range(edit.max_claims, out, "max_claims", 1, 100)
        fields = replace(fields, max_claims=edit.max_claims)
    if edit.expires_at is not None:
        _check_expiry(edit.expires_at, now, out)
        fields = replace(fields, expires_at=edit.expires_at)
    out.raise_if_any()
    return fields


def valid_point(
    lat: float | None, lng: float | None, radius_km: int, *, names: tuple[str, str, str]
) -> tuple[float, float, float]:
    """A search point and radius (1 to 200 km; 0 means 25); both coordinates required."""
    out = Violations()
    lat_name, lng_name, radius_name = names
    if lat is None or lng is None:
        for name, value in ((lat_name, lat), (lng_name, lng)):
            if value is None:
                out.add(name, "is required")
    else:
        check_coordinates(lat, lng, out, (lat_name, lng_name))
    radius = radius_km or 25
    _check_range(radius, out, radius_name, 1, 200)
    out.raise_if_any()
    assert lat is not None and lng is not None
    return lat, lng, float(radius)


def valid_query(
    query: MissionQuery, *, lat: float | None, lng: float | None, radius_km: int
) -> MissionQuery:
    """ListMissions' filters checked; the point is kept only when both coordinates are sent."""
    out = Violations()
    for name, value in (
        ("min_reward", query.min_reward),
        ("max_reward", query.max_reward),
        ("max_duration_minutes", query.max_duration_minutes),
    ):
        if value < 0:
            out.add(name, "must not be negative")
    if len(query.skills) > 20:
        out.add("skills", "must have at most 20 skills")
    out.raise_if_any()
    near = None
    if lat is not None or lng is not None or radius_km:
        near = valid_point(lat, lng, radius_km, names=("lat", "lng", "radius_km"))
    if query.sort == "distance" and near is None:
        out.add("sort", "DISTANCE needs lat and lng")
        out.raise_if_any()
    return replace(query, near=near, skills=tuple(s.strip().lower() for s in query.skills))


def valid_claim_edit(edit: ClaimEdit) -> ClaimEdit:
    """UpdateClaim's fields checked."""
    out = Violations()
    if edit.progress_percent is not None:
        _check_range(edit.progress_percent, out, "progress_percent", 0, 100)
    if edit.notes is not None:
        check_text(edit.notes, out, "notes", 2000)
    if edit.abandon and edit.progress_percent is not None:
        out.add("progress_percent", "cannot be sent with abandon")
    out.raise_if_any()
    return edit


MAX_SPEND = 1_000_000


def valid_spend(
    amount: int, type: str, reference_id: str, description: str, idempotency_key: str
) -> None:
    """SpendTokens' fields."""
    out = Violations()
    if not 1 <= amount <= MAX_SPEND:
        out.add("amount", f"must be between 1 and {MAX_SPEND}")
    if type not in SPEND_TYPES:
        out.add("type", f"must be one of {', '.join(SPEND_TYPES)}")
    check_text(reference_id, out, "reference_id", 64)
    check_text(description, out, "description", 500)
    if not 1 <= len(idempotency_key) <= 64:
        out.add("idempotency_key", "must be 1 to 64 characters")
    else:
        check_text(idempotency_key, out, "idempotency_key", 64)
    out.raise_if_any()
