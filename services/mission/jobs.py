"""The mission service's periodic work in the worker: expiring overdue claims and missions,
checking the ImpactToken ledger, queueing again the evaluations of missions whose guardrail job
was lost, the automatic evidence check, and removing evidence files no row names."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client import Counter

from services.core.jobs import JobConsumer, PeriodicTask, WorkerResources
from services.core.logging import get_logger
from services.mission.claims import expire_overdue
from services.mission.deps import MissionDeps
from services.mission.files import StorageUnavailable
from services.mission.missions import evaluation_job
from services.mission.review import check_round
from services.mission.tokens import reconcile

log = get_logger(__name__)
EXPIRED = Counter("mission_expired_total", "Claims and missions expired by the sweep", ["what"])
REQUEUED = Counter(
    "mission_evaluations_requeued_total", "Mission evaluations queued again by the sweep"
)
ORPHANS = Counter("evidence_orphan_files_removed_total", "Stored files no evidence row names")
ORPHAN_GRACE = timedelta(hours=1)
"""A file is stored before its row commits: younger files may still be about to be named."""


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


async def sweep_orphans(deps: MissionDeps, *, grace: timedelta = ORPHAN_GRACE) -> int:
    """Removes stored evidence files older than `grace` that no evidence row names."""
    cutoff = deps.clock() - grace
    candidates: list[str] = []
    removed = 0
    try:
        async for key, stored_at in deps.files.stored():
            if stored_at < cutoff:
                candidates.append(key)
            if len(candidates) >= 500:
                removed += await _remove_unreferenced(deps, candidates)
                candidates = []
        removed += await _remove_unreferenced(deps, candidates)
    except StorageUnavailable:
        log.warning("orphan_sweep_storage_unavailable")
    if removed:
        ORPHANS.inc(removed)
        log.info("evidence_orphans_removed", count=removed)
    return removed


async def _remove_unreferenced(deps: MissionDeps, keys: list[str]) -> int:
    named = await deps.evidence.referenced(keys)
    orphans = [key for key in keys if key not in named]
    for key in orphans:
        await deps.files.delete(key)
    return len(orphans)


async def consumers(resources: WorkerResources) -> list[JobConsumer]:
    """The expiry sweep, the ledger reconciliation, the lost-evaluation sweep, the automatic
    evidence check and the orphan-file sweep."""
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
        PeriodicTask(
            "evidence-check",
            lambda: check_round(deps),
            interval=settings.evidence_check_interval_seconds,
        ),
        PeriodicTask(
            "evidence-orphans",
            lambda: sweep_orphans(deps),
            interval=settings.evidence_orphan_sweep_interval_seconds,
        ),
    ]
