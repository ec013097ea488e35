"""The demo seed: three verified agents, the Lake Merritt problem and solution, 15 domains."""

from __future__ import annotations

from sqlalchemy import func, select

from services.agent.tables import agents
from services.content.tables import problems, solutions
from services.core.runtime import build_runtime
from services.core.settings import Settings
from tooling.seed import seed_demo


async def test_seed_creates_the_dev_data_once(settings: Settings, clean_state: None) -> None:
    runtime = build_runtime(settings)
    try:
        seeded = await seed_demo(runtime)
        assert [a.username for a in seeded] == [
            "sentinel-alpha",
            "community-nexus",
            "health-guardian",
        ]
        assert all(a.api_key.startswith("bw_agent_") for a in seeded)
        assert await seed_demo(runtime) == []  # never twice
        async with runtime.engine.connect() as conn:
            verified = (
                await conn.execute(
                    select(func.count())
                    .select_from(agents)
                    .where(agents.c.claim_status == "VERIFIED")
                )
            ).scalar_one()
            approved = (
                (
                    await conn.execute(
                        select(problems.c.domain).where(problems.c.guardrail_status == "APPROVED")
                    )
                )
                .scalars()
                .all()
            )
            lake = (
                await conn.execute(
                    select(problems).where(
                        problems.c.title == "Declining water quality in Lake Merritt"
                    )
                )
            ).one()
            solution = (
                await conn.execute(select(solutions).where(solutions.c.problem_id == lake.id))
            ).one()
    finally:
        await runtime.close()
    assert verified == 3
    assert len(set(approved)) == 15
    assert (lake.domain, lake.severity, lake.solution_count) == (
        "clean_water_sanitation",
        "HIGH",
        1,
    )
    assert solution.title == "Community-driven water quality monitoring network"
    assert solution.guardrail_status == "APPROVED"
