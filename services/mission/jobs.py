"""The mission service's periodic work in the worker: expiring overdue claims and missions,
checking the ImpactToken ledger, and queueing again the evaluations of missions whose guardrail
job was lost."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client import Counter

from services.core.jobs import JobConsumer, PeriodicTask, WorkerResources
from services.core.logging import get_logger
from services.mission.claims import expire_overdue
from services.mission.deps import MissionDeps
from services.mission.missions import evaluation_job
from services.mission.tokens import reconcile

log = get_logger(__name__)
EXPIRED = Counter("mission_expired_total", "Claims and missions expired by the sweep", ["what"])
REQUEUED = Counter(
    "mission_evaluations_requeued_total", "Mission evaluations queued again by the sweep"
)


async def expire_round(deps: MissionDeps) -> tuple[int, int]:
    """Expires what is overdue and counts it."""
    claims, missions = await expire_overdue(deps)
    EXPIRED.labels("claims").inc(claims)
    EXPIRED.labels("missions").inc(missions)
    return claims, missions


async def requeue_lost(deps: MissionDeps, *, older_than: timedelta) -> int:
    """PENDING missions older than `older_than` whose job is gone are queued again."""
    requeued = 0
    for mission in await deps.missions.pending_since(deps.clock() - older_than, limit=500):
        if await deps.evaluations.requeue_if_lost(evaluation_job(mission)):
            requeued += 1
    if requeued:
        REQUEUED.inc(requeued)
        log.warning("requeued_lost_mission_evaluations", count=requeued)
    return requeued


async def consumers(resources: WorkerResources) -> list[JobConsumer]:
    """The expiry sweep, the ledger reconciliation and the lost-evaluation sweep."""
    from services.mission.service import build_deps

    settings = resources.settings
    deps = build_deps(resources.runtime)
    pending_after = timedelta(seconds=settings.sweep_pending_after_seconds)
    return [
        PeriodicTask(
            "mission-expiry",
            lambda: expire_round(deps),
            interval=settings.mission_expiry_interval_seconds,
        ),
        PeriodicTask(
            "ledger-reconciliation",
            lambda: reconcile(deps),
            interval=settings.ledger_reconcile_interval_seconds,
        ),
        PeriodicTask(
            "mission-sweep",
            lambda: requeue_lost(deps, older_than=pending_after),
            interval=settings.sweep_interval_seconds,
        ),
    ]
