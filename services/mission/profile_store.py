"""Humans' profiles as frozen records (`ProfileStore`): one row per human, keyed by their id."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Row

from services.core.ids import parse_uuid
from services.core.store import SqlStore
from services.mission.model import Availability, NewProfile, ProfileChanges, ProfileRecord
from services.mission.tables import human_profiles

_BY_HUMAN = select(human_profiles).where(human_profiles.c.human_id == bindparam("human_id"))


def _record(row: Row[Any]) -> ProfileRecord:
    # The three availability columns are written together: a time zone means a schedule.
    availability = (
        Availability(
            weekdays=bool(row.available_weekdays),
            weekends=bool(row.available_weekends),
            timezone=row.timezone,
        )
        if row.timezone is not None
        else None
    )
    return ProfileRecord(
        human_id=str(row.human_id),
        skills=tuple(row.skills),
        languages=tuple(row.languages),
        city=row.city,
        country=row.country,
        latitude=row.latitude,
        longitude=row.longitude,
        service_radius_km=row.service_radius_km,
        availability=availability,
        bio=row.bio,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _availability_values(availability: Availability) -> dict[str, Any]:
    return {
        "available_weekdays": availability.weekdays,
        "available_weekends": availability.weekends,
        "timezone": availability.timezone,
    }


class ProfileStore(SqlStore):
    """Profiles by their human's id (a string; a malformed one finds nothing)."""

    async def get(self, human_id: str) -> ProfileRecord | None:
        """The human's profile, or None."""
        parsed = parse_uuid(human_id)
        if parsed is None:
            return None
        async with self._db.connect() as conn:
            row = (await conn.execute(_BY_HUMAN, {"human_id": parsed})).first()
        return _record(row) if row else None

    async def insert(self, human_id: str, new: NewProfile) -> ProfileRecord | None:
        """The human's new profile; None when they already have one (also under a race: the
        key decides, in one statement). `human_id` is a caller's, so a real human's."""
        values: dict[str, Any] = {
            "human_id": uuid.UUID(human_id),
            "skills": list(new.skills),
            "languages": list(new.languages),
            "city": new.city,
            "country": new.country,
            "latitude": new.latitude,
            "longitude": new.longitude,
            "service_radius_km": new.service_radius_km,
            "bio": new.bio,
        }
        if new.availability is not None:
            values |= _availability_values(new.availability)
        statement = (
            pg_insert(human_profiles)
            .values(**values)
            .on_conflict_do_nothing(index_elements=[human_profiles.c.human_id])
            .returning(human_profiles)
        )
        async with self._db.connect() as conn:
            row = (await conn.execute(statement)).first()
        return _record(row) if row else None

    async def update(self, human_id: str, changes: ProfileChanges) -> ProfileRecord | None:
        """Applies the fields sent ("" in a text field stores NULL); None when the human has
        no profile."""
        parsed = parse_uuid(human_id)
        if parsed is None:
            return None
        values: dict[str, Any] = {}
        if changes.skills is not None:
            values["skills"] = list(changes.skills)
        if changes.languages is not None:
            values["languages"] = list(changes.languages)
        for name in ("city", "country", "bio"):
            sent = getattr(changes, name)
            if sent is not None:
                values[name] = sent or None
        if changes.clear_location:
            values |= {"latitude": None, "longitude": None}
        elif changes.latitude is not None and changes.longitude is not None:
            values |= {"latitude": changes.latitude, "longitude": changes.longitude}
        if changes.service_radius_km is not None:
            values["service_radius_km"] = changes.service_radius_km
        if changes.availability is not None:
            values |= _availability_values(changes.availability)
        statement = (
            update(human_profiles)
            .where(human_profiles.c.human_id == parsed)
            .values(**values, updated_at=func.now())
            .returning(human_profiles)
        )
        async with self._db.connect() as conn:
            row = (await conn.execute(statement)).first()
        return _record(row) if row else None
