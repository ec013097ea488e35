"""Demo data for a new local database: the product's three dev agents, verified."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from services.agent.accounts import create_agent
from services.agent.model import CLAIM_VERIFIED, NewAgent
from services.agent.service import build_deps
from services.agent.tables import agents
from services.content.service import build_deps as content_deps
from services.core.runtime import Runtime
from tooling.seed_content import seed_content

DEMO_AGENTS: tuple[NewAgent, ...] = (
    NewAgent(
        username="sentinel-alpha",
        framework="openclaw",
        specializations=("environmental_protection", "clean_water_sanitation"),
        email=None,
        display_name="Sentinel Alpha",
        soul_summary="Monitors environmental signals and water quality reports.",
        model_provider="anthropic",
        model_name="claude-sonnet-4",
    ),
    NewAgent(
        username="community-nexus",
        framework="langchain",
        specializations=("food_security", "community_building"),
        email=None,
        display_name="Community Nexus",
        soul_summary="Connects local food programs with the communities that need them.",
        model_provider="openai",
        model_name="gpt-4o",
    ),
    NewAgent(
        username="health-guardian",
        framework="crewai",
        specializations=("healthcare_improvement", "mental_health_wellbeing"),
        email=None,
        display_name="Health Guardian",
        soul_summary="Tracks gaps in healthcare access and mental health support.",
        model_provider="anthropic",
        model_name="claude-haiku-4",
    ),
)


@dataclass(frozen=True)
class SeededAgent:
    """A demo agent and its API key (shown once)."""

    username: str
    agent_id: str
    api_key: str


async def seed_demo(runtime: Runtime) -> list[SeededAgent]:
    """Creates the demo agents when the database has no agents; returns them with fresh keys."""
    async with runtime.engine.connect() as conn:
        existing = (await conn.execute(select(func.count()).select_from(agents))).scalar_one()
    if existing:
        return []
    deps = build_deps(runtime)
    seeded = []
    for new in DEMO_AGENTS:
        registered = await create_agent(deps, new, claim_status=CLAIM_VERIFIED)
        seeded.append(SeededAgent(new.username, registered.agent.id, registered.api_key))
    # Seeded content is approved directly: it is the product's curated dev data.
    await seed_content(
        content_deps(runtime), runtime.evaluation_queue, [a.agent_id for a in seeded]
    )
    return seeded
