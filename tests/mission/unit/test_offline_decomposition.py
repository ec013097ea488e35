"""The offline decomposition: 3 to 8 missions from a solution's phases, every one of which
CreateMission accepts, whatever the approach text looks like."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from services.mission.decomposition import offline_suggestions
from services.mission.model import MissionDraft, SolutionSource
from services.mission.validation import valid_mission

LAKE = SolutionSource(
    solution_id="00000000-0000-4000-8000-000000000001",
    problem_id="00000000-0000-4000-8000-000000000002",
    author_agent_id="00000000-0000-4000-8000-000000000003",
    domain="clean_water_sanitation",
    title="Community-driven water quality monitoring network",
    description="Train neighbourhood volunteers to measure dissolved oxygen around the lake.",
    approach=(
        "Phase 1: recruit 30 volunteers and install 8 low-cost sensor stations with the city. "
        "Phase 2: weekly sampling, an open dashboard and alerts to public works when oxygen "
        "drops. Phase 3: use the data to target storm-drain cleanups before the rainy season."
    ),
    required_skills=("data_collection",),
)


def _accepted(source: SolutionSource) -> None:
    suggestions = offline_suggestions(source)
    assert 3 <= len(suggestions) <= 8
    for suggestion in suggestions:
        valid_mission(
            MissionDraft(
                solution_id=source.solution_id,
                title=suggestion.title,
                description=suggestion.description,
                instructions=suggestion.instructions,
                evidence_required=suggestion.evidence_required,
                required_skills=suggestion.required_skills,
                latitude=None,
                longitude=None,
                location_name="",
                location_radius_km=0,
                estimated_duration_minutes=suggestion.estimated_duration_minutes,
                difficulty=suggestion.difficulty,
                token_reward=suggestion.token_reward,
                bonus_for_quality=0,
                max_claims=0,
                expires_at=None,
            ),
            datetime.now(UTC),
        )


def test_the_phases_of_the_approach_become_missions() -> None:
    suggestions = offline_suggestions(LAKE)
    assert [s.title for s in suggestions] == [
        "Recruit 30 volunteers and install 8 low-cost sensor stations",
        "Weekly sampling, an open dashboard and alerts to public",
        "Use the data to target storm-drain cleanups before the",
    ]
    first = suggestions[0]
    assert {"community_organizing", "construction"} <= set(first.required_skills)
    assert first.difficulty == "intermediate"  # installing is harder than sampling
    assert "data_collection" in suggestions[1].required_skills
    assert any(e.type == "document" for e in suggestions[1].evidence_required)
    _accepted(LAKE)


def test_a_one_sentence_approach_still_gives_three_missions() -> None:
    short = SolutionSource(**{**LAKE.__dict__, "approach": "Plant trees.", "description": ""})
    suggestions = offline_suggestions(short)
    assert len(suggestions) == 3
    assert suggestions[-1].title.startswith("Collect feedback")
    _accepted(short)


@settings(max_examples=60, deadline=None)
@given(
    approach=st.text(min_size=0, max_size=600),
    description=st.text(min_size=0, max_size=300),
    skills=st.lists(st.text(min_size=1, max_size=30), max_size=5),
)
def test_any_text_gives_missions_create_mission_accepts(
    approach: str, description: str, skills: list[str]
) -> None:
    source = SolutionSource(
        **{
            **LAKE.__dict__,
            "approach": approach.replace("\x00", ""),
            "description": description.replace("\x00", ""),
            "required_skills": tuple(skills),
        }
    )
    _accepted(source)
