"""The mission service's business gauges, computed by the worker (see `core.business_gauges`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from services.core.business_gauges import start_of_week
from services.core.runtime import Runtime
from services.mission.definition import MISSIONS_COMPLETED, TOKENS_DISTRIBUTED
from services.mission.ledger_store import LedgerStore
from services.mission.mission_store import MissionStore


async def compute(runtime: Runtime, now: datetime) -> Mapping[str, float]:
    """The mission gauges at `now`."""
    week = start_of_week(now)
    completed = await MissionStore(runtime.engine).claims_completed_since(week)
    earned = await LedgerStore(runtime.engine).earned_since(week)
    return {MISSIONS_COMPLETED.name: completed, TOKENS_DISTRIBUTED.name: earned}
