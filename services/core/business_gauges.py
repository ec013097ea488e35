"""Business gauges as a service declares them: names, meanings and the function computing them.

A service declares its gauges in its definition (`ServiceDefinition.business_gauges`); the
worker computes them on a schedule and exports them (`core.business_refresh`). This module
stays light: definitions import it.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.core.runtime import Runtime


@dataclass(frozen=True)
class BusinessGauge:
    """One gauge a service exports through the worker."""

    name: str
    """The metric name, `betterworld_...`."""
    help: str
    """What it measures: the metric's HELP text and its meaning in docs/metrics.md."""


@dataclass(frozen=True)
class BusinessGauges:
    """A service's business gauges and how to compute them."""

    gauges: tuple[BusinessGauge, ...]
    compute: Callable[[Runtime, datetime], Awaitable[Mapping[str, float]]]
    """Every gauge's value by name at the given instant (UTC), read from the service's own
    tables through its store; usually `lazy("services.<name>.figures:compute")`."""


def start_of_day(instant: datetime) -> datetime:
    """00:00 UTC of the instant's day ("today" in the gauges)."""
    return instant.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def start_of_week(instant: datetime) -> datetime:
    """Monday 00:00 UTC of the instant's week ("this week" in the gauges)."""
    day = start_of_day(instant)
    return day - timedelta(days=day.weekday())


def ratio(part: int, whole: int) -> float:
    """part / whole; NaN when there is no whole (a rate of nothing is unknown, not zero)."""
    return part / whole if whole else math.nan
