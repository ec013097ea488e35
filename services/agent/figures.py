"""The agent service's business gauges, computed by the worker (see `core.business_gauges`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from services.agent.definition import ACTIVE_AGENTS
from services.agent.store import AgentStore
from services.core.runtime import Runtime


async def compute(runtime: Runtime, now: datetime) -> Mapping[str, float]:
    """The agent gauges at `now`."""
    active = await AgentStore(runtime.engine).active_since(now - timedelta(hours=24))
    return {ACTIVE_AGENTS.name: active}
