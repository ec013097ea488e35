"""Suggesting missions for an approved solution: Claude (`claude_planner`, one forced tool call,
validated) when a key is set, otherwise the offline decomposition here of the solution's
approach into its phases.

Suggestions are returned, never stored: the agent edits and creates the ones it wants.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from services.core.logging import get_logger
from services.mission.model import EvidenceItem, SolutionSource, Step

log = get_logger(__name__)
MIN_SUGGESTIONS, MAX_SUGGESTIONS = 3, 8


@dataclass(frozen=True)
class Suggestion:
    """One suggested mission (fields within CreateMission's limits)."""

    title: str
    description: str
    instructions: tuple[Step, ...]
    evidence_required: tuple[EvidenceItem, ...]
    required_skills: tuple[str, ...]
    estimated_duration_minutes: int
    difficulty: str
    token_reward: int


class Decomposer(Protocol):
    """Turns a solution into 3 to 8 suggested missions."""

    name: str

    async def decompose(self, solution: SolutionSource) -> list[Suggestion]:
        """The suggestions, all valid, or an error: never a partial answer."""
        ...


# Offline ----------------------------------------------------------------------------------

# Words that say which skill a step needs (checked against the text in lower case).
_SKILL_HINTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("photography", ("photo", "photograph", "picture", "film", "video")),
    ("data_collection", ("sampl", "measur", "record", "count", "monitor", "reading", "log ")),
    ("community_organizing", ("recruit", "volunteer", "organi", "mobili", "meeting", "outreach")),
    ("teaching", ("train", "teach", "workshop", "educat", "lesson")),
    ("research", ("survey", "interview", "research", "analy", "map ")),
    ("construction", ("install", "build", "repair", "construct", "mount")),
    ("documentation", ("publish", "report", "document", "write", "dashboard")),
    ("translation", ("translat", "language")),
)
_PRODUCES_DATA = (
    "publish",
    "report",
    "data",
    "survey",
    "record",
    "log",
    "sampl",
    "measur",
    "dashboard",
)
_HARDER = ("install", "build", "train", "construct", "repair", "analy")
_PHASE = re.compile(r"\b(?:phase|step|stage)\s*\d+\s*[:.)-]\s*", re.IGNORECASE)
_NUMBERED = re.compile(r"(?:^|\s)\d+[.)]\s+")
_SENTENCE = re.compile(r"(?<=[.;!?])\s+")
_CLAUSE = re.compile(r",\s+|;\s+|\s+and then\s+|\s+then\s+")


def _phases(approach: str, description: str) -> list[str]:
    """The approach's phases ("Phase 1: …", numbered items), else its sentences."""
    for pattern in (_PHASE, _NUMBERED):
        parts = [p.strip(" .;") for p in pattern.split(approach) if p.strip(" .;")]
        if len(parts) >= 2:
            break
    else:
        parts = [p.strip(" .;") for p in _SENTENCE.split(approach) if len(p.strip(" .;")) > 15]
    if len(parts) < MIN_SUGGESTIONS:
        extra = [p.strip(" .;") for p in _SENTENCE.split(description) if len(p.strip(" .;")) > 15]
        parts += [p for p in extra if p not in parts]
    return parts[:MAX_SUGGESTIONS]


def _title(text: str) -> str:
    words = text.split()
    title = " ".join(words[:9]).rstrip(",.;:")
    return (title[:1].upper() + title[1:])[:120] or "Help with the solution"


def _skills(text: str, offered: tuple[str, ...]) -> tuple[str, ...]:
    lowered = f"{text.lower()} "
    found = [skill for skill, hints in _SKILL_HINTS if any(h in lowered for h in hints)]
    # Skills the solution names that the phase mentions come first.
    named = [s for s in offered if s.lower().replace("_", " ") in lowered]
    ordered = list(dict.fromkeys([*named, *found]))
    return tuple(ordered[:5]) or ("community_organizing",)


def _steps(text: str) -> tuple[Step, ...]:
    clauses = [c.strip(" .;") for c in _CLAUSE.split(text) if len(c.strip(" .;")) > 3]
    steps = [c[:1].upper() + c[1:] for c in clauses][:10] or [text]
    steps.append("Record what you did and upload the evidence.")
    return tuple(Step(i + 1, s[:2000]) for i, s in enumerate(steps))


def _evidence(text: str) -> tuple[EvidenceItem, ...]:
    lowered = text.lower()
    items = [EvidenceItem("photo", "Photos of the work at the site, before and after")]
    if any(word in lowered for word in _PRODUCES_DATA):
        items.append(EvidenceItem("document", "The data or report you produced"))
    return tuple(items)


def _suggestion(phase: str, solution: SolutionSource, index: int) -> Suggestion:
    steps = _steps(phase)
    minutes = max(30, min(480, 30 * len(steps)))
    harder = any(word in phase.lower() for word in _HARDER)
    context = f" Part {index + 1} of \u201c{solution.title}\u201d." if solution.title else ""
    description = f"{phase[:1].upper()}{phase[1:].rstrip('.')}.{context}"
    if len(description) < 10:
        description += " Part of an approved solution."
    return Suggestion(
        title=_title(phase),
        description=description[:5000],
        instructions=steps,
        evidence_required=_evidence(phase),
        required_skills=_skills(phase, solution.required_skills),
        estimated_duration_minutes=minutes,
        difficulty="intermediate" if harder else "beginner",
        token_reward=max(5, min(200, round(minutes / 60 * 10))),
    )


def offline_suggestions(solution: SolutionSource) -> list[Suggestion]:
    """3 to 8 missions from the solution's phases (or sentences); when the text has fewer
    than three parts, the last missions document and share the results, which every
    solution needs."""
    phases = _phases(solution.approach, solution.description)
    suggestions = [_suggestion(p, solution, i) for i, p in enumerate(phases)]
    closing = (
        "Document the results and share them with the community",
        "Photograph the site and the finished work, and write a short report of what changed",
        "Collect feedback from the people affected, and record it for the next phase",
    )
    for text in closing:
        if len(suggestions) >= MIN_SUGGESTIONS:
            break
        suggestions.append(_suggestion(text, solution, len(suggestions)))
    return suggestions[:MAX_SUGGESTIONS]


class OfflineDecomposer:
    """`Decomposer` without a model (no key set)."""

    name = "offline"

    async def decompose(self, solution: SolutionSource) -> list[Suggestion]:
        return offline_suggestions(solution)
