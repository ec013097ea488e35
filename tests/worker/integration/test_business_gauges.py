"""The business gauges over the real database: data loaded around the day's and the week's
boundaries, one round run, the values read from a real metrics endpoint over HTTP."""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import insert

from services.agent.tables import agents
from services.content.tables import problems
from services.core.business_gauges import BusinessGauge, BusinessGauges
from services.core.business_refresh import (
    TASK_NAME,
    BusinessGaugesFailed,
    declared,
    refresh_business_gauges,
)
from services.core.metrics import start_metrics_endpoint
from services.core.runtime import Runtime, build_runtime
from services.core.settings import Settings
from services.guardrail.tables import evaluations
from services.mission.tables import humans, mission_claims, missions, token_ledger
from services.registry import REGISTRY as SERVICES
from services.worker.main import business_gauges_task

NOW = datetime(2026, 12, 9, 12, 0, tzinfo=UTC)
"""A Wednesday: today began at 00:00 and the week on Monday 7 December at 00:00 (UTC)."""
TODAY = datetime(2026, 12, 9, tzinfo=UTC)
MONDAY = datetime(2026, 12, 7, tzinfo=UTC)
GAUGES = (
    "betterworld_active_agents_24h",
    "betterworld_problems_today",
    "betterworld_approval_rate_24h",
    "betterworld_missions_completed_week",
    "betterworld_tokens_distributed_week",
)


@pytest.fixture
async def runtime(settings: Settings, clean_state: None) -> AsyncIterator[Runtime]:
    runtime = build_runtime(settings)
    try:
        yield runtime
    finally:
        await runtime.close()


@pytest.fixture
def scrape() -> Any:
    """Reads the gauges from this process's metrics endpoint, as Prometheus would."""
    endpoint = start_metrics_endpoint("127.0.0.1", 0)

    def read() -> dict[str, float | None]:
        text = httpx.get(f"http://127.0.0.1:{endpoint.port}/metrics", timeout=10).text
        families = {f.name: f for f in text_string_to_metric_families(text)}
        return {
            name: (families[name].samples[0].value if families[name].samples else None)
            for name in GAUGES
        }

    yield read
    endpoint.close()


async def _load(runtime: Runtime) -> None:
    """Rows on both sides of each gauge's window."""
    agent_id = uuid.uuid4()
    rows: list[tuple[Any, list[dict[str, Any]]]] = [
        (
            agents,
            [
                _agent("fresh", NOW - timedelta(hours=1)),
                _agent("just-in", NOW - timedelta(hours=23, minutes=59)),
                _agent("stale", NOW - timedelta(hours=25)),
                _agent("deactivated", NOW - timedelta(hours=1), active=False),
                _agent("silent", None),
            ],
        ),
        (
            problems,
            [
                _problem(agent_id, TODAY),
                _problem(agent_id, NOW - timedelta(hours=1)),
                _problem(agent_id, TODAY - timedelta(seconds=1)),
            ],
        ),
        (
            evaluations,
            [
                *(_evaluation(agent_id, "APPROVED", NOW - timedelta(hours=h)) for h in (1, 2, 23)),
                _evaluation(agent_id, "FLAGGED", NOW - timedelta(hours=3)),
                _evaluation(agent_id, "REJECTED", NOW - timedelta(hours=4)),
                *(_evaluation(agent_id, "REJECTED", NOW - timedelta(hours=25)) for _ in range(2)),
            ],
        ),
    ]
    human_id, mission_id = uuid.uuid4(), uuid.uuid4()
    rows += [
        (
            humans,
            [{"id": human_id, "email": "h@example.org", "password_hash": "x", "display_name": "H"}],
        ),
        (missions, [_mission(mission_id, agent_id)]),
        (
            mission_claims,
            [
                _claim(mission_id, human_id, "completed", MONDAY),
                _claim(mission_id, human_id, "completed", NOW - timedelta(hours=2)),
                _claim(mission_id, human_id, "completed", MONDAY - timedelta(seconds=1)),
                _claim(mission_id, human_id, "abandoned", NOW - timedelta(hours=2)),
                _claim(mission_id, human_id, "active", NOW - timedelta(hours=2)),
            ],
        ),
        (
            token_ledger,
            [
                _movement(human_id, 50, "EARN_MISSION", MONDAY + timedelta(days=1), before=0),
                _movement(human_id, 5, "EARN_PEER_REVIEW", NOW - timedelta(hours=1), before=50),
                _movement(human_id, -20, "SPEND_VOTE", NOW - timedelta(minutes=30), before=55),
                _movement(human_id, 10, "EARN_ORIENTATION", MONDAY - timedelta(hours=1), before=35),
            ],
        ),
    ]
    async with runtime.engine.begin() as conn:
        for table, values in rows:
            await conn.execute(insert(table), values)


def _agent(name: str, heartbeat: datetime | None, *, active: bool = True) -> dict[str, Any]:
    return {
        "username": name,
        "framework": "custom",
        "specializations": [],
        "is_active": active,
        "last_heartbeat_at": heartbeat,
    }


def _problem(author: uuid.UUID, at: datetime) -> dict[str, Any]:
    return {
        "author_agent_id": author,
        "title": f"Problem reported at {at.isoformat()}",
        "description": "A problem of the test.",
        "domain": "clean_water_sanitation",
        "severity": "high",
        "geographic_scope": "local",
        "guardrail_evaluation_id": uuid.uuid4(),
        "created_at": at,
    }


def _evaluation(author: uuid.UUID, decision: str, at: datetime) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "content_kind": "problem",
        "content_id": uuid.uuid4(),
        "author_agent_id": author,
        "decision": decision,
        "trust_tier": "established",
        "layer_a": {},
        "timings_ms": {},
        "created_at": at,
    }


def _mission(mission_id: uuid.UUID, author: uuid.UUID) -> dict[str, Any]:
    return {
        "id": mission_id,
        "solution_id": uuid.uuid4(),
        "problem_id": uuid.uuid4(),
        "author_agent_id": author,
        "title": "Survey the pumps",
        "description": "Count the working hand pumps.",
        "instructions": [],
        "evidence_required": [],
        "estimated_duration_minutes": 60,
        "difficulty": "easy",
        "token_reward": 50,
        "max_claims": 10,
        "active_claims": 1,
        "domain": "clean_water_sanitation",
        "guardrail_evaluation_id": uuid.uuid4(),
        "expires_at": NOW + timedelta(days=30),
    }


def _claim(mission: uuid.UUID, human: uuid.UUID, status: str, at: datetime) -> dict[str, Any]:
    return {
        "mission_id": mission,
        "human_id": human,
        "status": status,
        "claimed_at": at - timedelta(days=1),
        "deadline_at": at + timedelta(days=6),
        "updated_at": at,
    }


def _movement(human: uuid.UUID, amount: int, kind: str, at: datetime, *, before: int) -> dict:
    return {
        "human_id": human,
        "amount": amount,
        "balance_before": before,
        "balance_after": before + amount,
        "type": kind,
        "idempotency_key": str(uuid.uuid4()),
        "request_digest": b"\0" * 32,
        "created_at": at,
    }


async def test_one_round_publishes_every_figure_of_the_plan(runtime: Runtime, scrape: Any) -> None:
    await _load(runtime)
    await refresh_business_gauges(declared(SERVICES.definitions), runtime, now=NOW)
    assert scrape() == {
        "betterworld_active_agents_24h": 2,  # fresh, just-in
        "betterworld_problems_today": 2,  # from 00:00 UTC on
        "betterworld_approval_rate_24h": 0.6,  # 3 of 5 in the last 24 h
        "betterworld_missions_completed_week": 2,  # from Monday 00:00 UTC on
        "betterworld_tokens_distributed_week": 55,  # earnings only: 50 + 5
    }


async def test_with_nothing_to_count_the_figures_are_zero_and_the_rate_unknown(
    runtime: Runtime, scrape: Any
) -> None:
    await refresh_business_gauges(declared(SERVICES.definitions), runtime, now=NOW)
    values = scrape()
    rate = values.pop("betterworld_approval_rate_24h")
    assert rate is not None and math.isnan(rate)
    assert values == dict.fromkeys(values, 0.0)


async def test_a_failing_service_keeps_its_last_values_and_fails_the_round(
    runtime: Runtime, scrape: Any
) -> None:
    declarations = declared(SERVICES.definitions)
    await refresh_business_gauges(declarations, runtime, now=NOW)
    await _load(runtime)

    async def broken(runtime: Runtime, now: datetime) -> dict[str, float]:
        raise ConnectionError("the database went away")

    mission = next(d for d in declarations if "betterworld_missions_completed_week" in
                   {g.name for g in d.gauges})  # fmt: skip
    failing = BusinessGauges(gauges=mission.gauges, compute=broken)
    others = [d for d in declarations if d is not mission]
    with pytest.raises(BusinessGaugesFailed) as failed:
        await refresh_business_gauges([*others, failing], runtime, now=NOW)
    assert set(failed.value.names) == {
        "betterworld_missions_completed_week",
        "betterworld_tokens_distributed_week",
    }
    values = scrape()
    assert values["betterworld_problems_today"] == 2  # refreshed
    assert values["betterworld_missions_completed_week"] == 0  # the previous round's value


async def test_a_service_that_leaves_a_figure_out_fails_the_round(runtime: Runtime) -> None:
    async def incomplete(runtime: Runtime, now: datetime) -> dict[str, float]:
        return {}

    gauge = BusinessGauge("test_incomplete_gauge", "A gauge its service forgets to compute")
    with pytest.raises(BusinessGaugesFailed):
        await refresh_business_gauges([BusinessGauges((gauge,), incomplete)], runtime, now=NOW)


def _rounds(outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "job_duration_seconds_count", {"queue": TASK_NAME, "outcome": outcome}
    )
    return value or 0.0


async def test_the_worker_refreshes_them_on_its_schedule_and_times_each_round(
    runtime: Runtime, scrape: Any
) -> None:
    async with runtime.engine.begin() as conn:
        heartbeat = datetime.now(UTC) - timedelta(hours=1)
        await conn.execute(insert(agents), [_agent("checked-in", heartbeat)])
    task = business_gauges_task(SERVICES, runtime)
    assert task is not None
    before = _rounds("completed")
    task.start()
    try:
        for _ in range(100):  # the first round runs at once, at the current time
            if _rounds("completed") > before:
                break
            await asyncio.sleep(0.1)
    finally:
        await task.stop()
    assert _rounds("completed") == before + 1
    assert scrape()["betterworld_active_agents_24h"] == 1
