"""A profile's completeness: the weights of the parts it has, a hint per part it lacks."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from services.mission.model import Availability, ProfileRecord
from services.mission.profiles import SUGGESTIONS, WEIGHTS, completeness

NOW = datetime(2026, 12, 7, tzinfo=UTC)
MINIMAL = ProfileRecord(
    human_id="7f1c1a52-4a37-4d3e-9b1e-3c3b0c8f2d10",
    skills=("data_collection",),
    languages=("en",),
    city=None,
    country=None,
    latitude=None,
    longitude=None,
    service_radius_km=10,
    availability=None,
    bio=None,
    created_at=NOW,
    updated_at=NOW,
)
FULL = dataclasses.replace(
    MINIMAL,
    city="Oakland",
    country="US",
    latitude=37.8,
    longitude=-122.27,
    availability=Availability(weekdays=False, weekends=True, timezone="America/Los_Angeles"),
    bio="Counts birds on weekends.",
)


def test_the_weights_add_up_to_100_and_every_part_has_a_hint() -> None:
    assert sum(WEIGHTS.values()) == 100
    assert set(SUGGESTIONS) == set(WEIGHTS)


def test_a_full_profile_scores_100_without_hints() -> None:
    assert completeness(FULL).score == 100
    assert completeness(FULL).suggestions == ()


def test_the_required_parts_alone_score_40_with_a_hint_per_missing_part() -> None:
    result = completeness(MINIMAL)
    assert result.score == 25 + 15
    assert result.suggestions == (
        "Add your location so nearby missions can find you",
        SUGGESTIONS["city"],
        SUGGESTIONS["country"],
        SUGGESTIONS["availability"],
        SUGGESTIONS["bio"],
    )


@pytest.mark.parametrize(
    ("missing", "changes"),
    [
        ("coordinates", {"latitude": None, "longitude": None}),
        ("city", {"city": None}),
        ("country", {"country": None}),
        ("availability", {"availability": None}),
        ("bio", {"bio": ""}),
        ("skills", {"skills": ()}),
        ("languages", {"languages": ()}),
    ],
)
def test_each_missing_part_costs_its_weight(missing: str, changes: dict[str, object]) -> None:
    result = completeness(dataclasses.replace(FULL, **changes))  # type: ignore[arg-type]
    assert result.score == 100 - WEIGHTS[missing]
    assert result.suggestions == (SUGGESTIONS[missing],)


def test_availability_counts_even_when_neither_weekdays_nor_weekends() -> None:
    # Saying "not available now" is still an answer to the question.
    busy = Availability(weekdays=False, weekends=False, timezone="Europe/Paris")
    assert completeness(dataclasses.replace(MINIMAL, availability=busy)).score == 55
