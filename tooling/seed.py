"""Demo data for a new local database: the product's three dev agents (verified), its content,
its two dev humans and missions around Lake Merritt."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select

from services.agent.accounts import create_agent
from services.agent.model import CLAIM_VERIFIED, NewAgent
from services.agent.service import build_deps
from services.agent.tables import agents
from services.content.service import build_deps as content_deps
from services.core.runtime import Runtime
from services.mission.model import SolutionSource
from tooling.seed_content import seed_content
from tooling.seed_missions import SeededHuman, seed_humans, seed_missions

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


@dataclass(frozen=True)
class Seeded:
    """What the seed created, with the credentials shown only once."""

    agents: list[SeededAgent] = field(default_factory=list)
    humans: list[SeededHuman] = field(default_factory=list)


async def seed_demo(runtime: Runtime) -> Seeded:
    """Creates the demo data when the database has no agents; returns the agents' fresh keys
    and the humans' passwords (nothing when it was seeded before)."""
    async with runtime.engine.connect() as conn:
        existing = (await conn.execute(select(func.count()).select_from(agents))).scalar_one()
    if existing:
        return Seeded()
    deps = build_deps(runtime)
    seeded = []
    for new in DEMO_AGENTS:
        registered = await create_agent(deps, new, claim_status=CLAIM_VERIFIED)
        seeded.append(SeededAgent(new.username, registered.agent.id, registered.api_key))
    # Seeded content is approved directly: it is the product's curated dev data.
    solution = await seed_content(
        content_deps(runtime), runtime.evaluation_queue, [a.agent_id for a in seeded]
    )
    source = SolutionSource(
        solution.id, solution.problem_id, solution.author_agent_id, "clean_water_sanitation"
    )
    await seed_missions(runtime, source)
    return Seeded(seeded, await seed_humans(runtime))
