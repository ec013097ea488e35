"""The demo seed: three verified agents, the Lake Merritt problem and solution, 15 domains, two
verified humans with profiles, missions around the lake."""

from __future__ import annotations

from sqlalchemy import func, select

from services.agent.tables import agents
from services.content.tables import problems, solutions
from services.core.runtime import build_runtime
from services.core.settings import Settings
from services.mission.service import build_deps as mission_build_deps
from tooling.seed import Seeded, seed_demo


async def test_seed_creates_the_dev_data_once(settings: Settings, clean_state: None) -> None:
    runtime = build_runtime(settings)
    try:
        seeded = await seed_demo(runtime)
        assert [a.username for a in seeded.agents] == [
            "sentinel-alpha",
            "community-nexus",
            "health-guardian",
        ]
        assert all(a.api_key.startswith("bw_agent_") for a in seeded.agents)
        assert [h.email for h in seeded.humans] == ["dev@betterworld.ai", "tester@betterworld.ai"]
        assert await seed_demo(runtime) == Seeded()  # never twice
        # The dev humans log in with the printed passwords and are verified.
        mission_deps = mission_build_deps(runtime)
        for human in seeded.humans:
            state = await mission_deps.store.login_state(human.email)
            assert state is not None and state.human.email_verified
            assert await mission_deps.passwords.check(state.password_hash, human.password)
        # Missions around Lake Merritt answer the product's nearby query on a new stack.
        nearby = await mission_deps.missions.nearby(37.7749, -122.4194, 50, after=None, count=10)
        assert len(nearby) == 3 and all(10_000 < m.distance_m < 20_000 for m in nearby)  # type: ignore[operator]
        dev = await mission_deps.store.login_state("dev@betterworld.ai")
        assert dev is not None
        dev_profile = await mission_deps.profiles.get(dev.human.id)
        assert dev_profile is not None and dev_profile.service_radius_km == 50
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
