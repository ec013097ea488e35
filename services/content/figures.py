"""The content service's business gauges, computed by the worker (see `core.business_gauges`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from services.content.definition import PROBLEMS_TODAY
from services.content.sql import SqlContentStore
from services.core.business_gauges import start_of_day
from services.core.runtime import Runtime


async def compute(runtime: Runtime, now: datetime) -> Mapping[str, float]:
    """The content gauges at `now`."""
    reported = await SqlContentStore(runtime.engine).problems.reported_since(start_of_day(now))
    return {PROBLEMS_TODAY.name: reported}
