"""Demo content for a new local database: the product's dev problem and solution, and one
approved problem per domain for browsing."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from services.content import problems, solutions
from services.content.commands import NewProblem, NewSolution
from services.content.deps import ContentDeps
from services.content.embedding import backfill
from services.content.model import (
    APPROVED,
    ContentRecord,
    Decision,
    EstimatedCost,
    ExpectedImpact,
    ProblemRecord,
    SolutionRecord,
    SolutionScores,
)
from services.core.context import Principal, PrincipalKind
from services.core.queues import EvaluationQueue

LAKE_MERRITT = NewProblem(
    title="Declining water quality in Lake Merritt",
    description=(
        "Lake Merritt in Oakland, California has seen recurring algae blooms, low dissolved "
        "oxygen after storms and fish die-offs. Storm drains carry trash and nutrients into the "
        "tidal lagoon, and residents who walk, row and fish around it lack timely information."
    ),
    domain="clean_water_sanitation",
    severity="HIGH",
    geographic_scope="LOCAL",
    affected_population_estimate="about 400,000 Oakland residents",
    location_name="Lake Merritt, Oakland, CA",
    latitude=37.8021,
    longitude=-122.2585,
)

MONITORING_NETWORK = NewSolution(
    problem_id="",  # the seeded problem's, once it exists
    title="Community-driven water quality monitoring network",
    description=(
        "Train neighbourhood volunteers to measure dissolved oxygen, temperature and turbidity "
        "at fixed points around the lake and publish the readings openly every week."
    ),
    approach=(
        "Phase 1: recruit 30 volunteers and install 8 low-cost sensor stations with the city. "
        "Phase 2: weekly sampling, an open dashboard and alerts to public works when oxygen "
        "drops. Phase 3: use the data to target storm-drain cleanups before the rainy season."
    ),
    expected_impact=ExpectedImpact("sampling sites reporting weekly", 8, "6 months"),
    estimated_cost=EstimatedCost(15000.0, "USD"),
    timeline_estimate="6 months",
)

# One approved problem per domain, for browsing (data file beside this module).
DOMAIN_PROBLEMS: dict[str, dict[str, str]] = json.loads(
    (Path(__file__).with_name("seed_problems.json")).read_text(encoding="utf-8")
)


async def _approve(deps: ContentDeps, evaluations: EvaluationQueue, record: ContentRecord) -> None:
    # Curated data needs no evaluation: withdraw the job the creation queued.
    await evaluations.queue.remove(record.guardrail.evaluation_id)
    await deps.store.moderation.apply(
        Decision(
            kind=record.kind,
            content_id=record.id,
            evaluation_id=record.guardrail.evaluation_id,
            status=APPROVED,
            alignment_score=0.95,
            aligned_domain=(
                record.domain if isinstance(record, ProblemRecord) else "clean_water_sanitation"
            ),
            explanation="",
            scores=(
                SolutionScores(85.0, 80.0, 75.0, 80.75)
                if isinstance(record, SolutionRecord)
                else None
            ),
        )
    )


async def seed_content(
    deps: ContentDeps, evaluations: EvaluationQueue, author_ids: list[str]
) -> SolutionRecord:
    """Creates and approves the demo content; returns the Lake Merritt solution (missions are
    decomposed from it)."""
    authors = [Principal(kind=PrincipalKind.AGENT, id=a, name="seed") for a in author_ids]
    lake, _ = await problems.create_problem(deps, authors[0], LAKE_MERRITT)
    await _approve(deps, evaluations, lake)
    network = await solutions.create_solution(
        deps, authors[0], replace(MONITORING_NETWORK, problem_id=lake.id)
    )
    await _approve(deps, evaluations, network)
    for i, (domain, text) in enumerate(DOMAIN_PROBLEMS.items()):
        record, _ = await problems.create_problem(
            deps,
            authors[i % len(authors)],
            NewProblem(
                title=text["title"],
                description=text["description"],
                domain=domain,
                severity=("MEDIUM", "HIGH", "LOW", "CRITICAL")[i % 4],
                geographic_scope=("LOCAL", "REGIONAL", "NATIONAL")[i % 3],
            ),
        )
        await _approve(deps, evaluations, record)
    # No evaluation runs, so no worker embeds them: searchable from the first request on.
    await backfill(deps)
    return network
