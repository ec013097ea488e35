"""The guardrail's business gauges, computed by the worker (see `core.business_gauges`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from services.core.business_gauges import ratio
from services.core.runtime import Runtime
from services.guardrail.definition import APPROVAL_RATE
from services.guardrail.store import GuardrailStore


async def compute(runtime: Runtime, now: datetime) -> Mapping[str, float]:
    """The guardrail gauges at `now`."""
    approved, total = await GuardrailStore(runtime.engine).approvals_since(
        now - timedelta(hours=24)
    )
    return {APPROVAL_RATE.name: ratio(approved, total)}
