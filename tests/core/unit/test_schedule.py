"""Wall-clock schedules: the slot due at a given time and the next one, daily and weekly, in
UTC whatever the caller's time zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.core.schedule import Schedule

DAILY = Schedule.parse("03:00")
WEEKLY = Schedule.parse("Sun 04:00")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "latest", "following"),
    [
        ("2026-12-07T02:59:59", "2026-12-06T03:00:00", "2026-12-07T03:00:00"),
        ("2026-12-07T03:00:00", "2026-12-07T03:00:00", "2026-12-08T03:00:00"),
        ("2026-12-07T03:00:01", "2026-12-07T03:00:00", "2026-12-08T03:00:00"),
        ("2026-12-31T23:59:00", "2026-12-31T03:00:00", "2027-01-01T03:00:00"),
        ("2028-02-29T00:10:00", "2028-02-28T03:00:00", "2028-02-29T03:00:00"),
    ],
)
def test_the_daily_slot_is_0300_utc(now: str, latest: str, following: str) -> None:
    assert DAILY.latest(utc(now)) == utc(latest)
    assert DAILY.next(utc(now)) == utc(following)
    assert DAILY.period == timedelta(days=1)


@pytest.mark.parametrize(
    ("now", "latest", "following"),
    [
        # 2026-12-06 is a Sunday.
        ("2026-12-06T03:59:00", "2026-11-29T04:00:00", "2026-12-06T04:00:00"),
        ("2026-12-06T04:00:00", "2026-12-06T04:00:00", "2026-12-13T04:00:00"),
        ("2026-12-09T12:00:00", "2026-12-06T04:00:00", "2026-12-13T04:00:00"),
        ("2026-12-12T23:59:59", "2026-12-06T04:00:00", "2026-12-13T04:00:00"),
    ],
)
def test_the_weekly_slot_is_sunday_0400_utc(now: str, latest: str, following: str) -> None:
    assert WEEKLY.latest(utc(now)) == utc(latest)
    assert WEEKLY.next(utc(now)) == utc(following)
    assert WEEKLY.latest(utc(now)).weekday() == 6
    assert WEEKLY.period == timedelta(days=7)


def test_a_clock_in_another_zone_is_read_as_the_same_instant() -> None:
    paris = timezone(timedelta(hours=1))
    # 04:30 in Paris is 03:30 UTC: today's slot has come.
    now = datetime(2026, 12, 7, 4, 30, tzinfo=paris)
    assert DAILY.latest(now) == utc("2026-12-07T03:00:00")


@pytest.mark.parametrize("spec", ["3:00", "24:00", "03:60", "sunday 04:00", "xyz 04:00", ""])
def test_a_malformed_schedule_is_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="not a"):
        Schedule.parse(spec)
