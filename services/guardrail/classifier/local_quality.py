"""Heuristic quality scores of a solution (impact, feasibility, cost efficiency) without a model.

These are not judgments of merit: an embedding model cannot tell whether a plan will work. They
reward what a reviewer can check, namely a solution that states measurable outcomes (numbers,
people reached, a timeframe, how it will be measured), a concrete plan (phases, partners, local
staff, maintenance, risks) and its costs (amounts, cost per person, cheap or reused means), and
they penalize vague, grandiose or very short text. Each dimension is

    64 + 15 * tanh(anchor margin / 0.08) + cue points + length points, clamped to 0-100

where the anchor margin is the similarity to the dimension's high-quality anchor statements minus
the similarity to its low-quality ones (exemplars/v1.json, `quality_anchors`), and cue points come
from the regular expressions below, each capped. A bare one-line idea lands near 40-55; a
concrete plan with numbers, partners and a budget lands near 70-90.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from services.guardrail.classifier.base import SolutionScores

NEUTRAL = 64.0
ANCHOR_WEIGHT = 15.0
ANCHOR_SCALE = 0.08


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


# Each cue: (pattern, points per distinct match, cap on its points).
_NUMBER = r"\d[\d,.]*"
_IMPACT_CUES = (
    (_rx(rf"{_NUMBER}\s*(%|percent|per ?cent)"), 5.0, 10.0),
    (
        _rx(
            rf"{_NUMBER}\s+(?:\w+\s+)?(people|persons|households|families|residents|students|"
            r"children|patients|farmers|women|girls|workers|seniors|villages|schools|clinics|"
            r"communities|homes|users|members)"
        ),
        5.0,
        10.0,
    ),
    (
        _rx(
            rf"\b(within|in|over|after|by)\s+({_NUMBER}|one|two|three|four|five|six|twelve)\s+"
            r"(days?|weeks?|months?|years?)|\bby (19|20)\d\d\b"
        ),
        4.0,
        8.0,
    ),
    (_rx(r"\b(measur\w*|track\w*|baseline|indicator|evaluat\w*|survey\w*|monitor\w*)\b"), 3.0, 6.0),
    (_rx(r"\b(reduc|cut|increas|rais|improv|prevent|halv|doubl)\w*\b"), 2.0, 4.0),
)
_FEASIBILITY_CUES = (
    (_rx(r"\b(phase|step|stage|pilot|month|week|first|then|milestone)s?\b"), 3.0, 12.0),
    (
        _rx(
            r"\b(partner\w*|ministry|municipal\w*|district|council|utility|clinic|school|ngo|"
            r"cooperative|committee|union|association)\b"
        ),
        2.0,
        8.0,
    ),
    (_rx(r"\b(train\w*|hire|recruit\w*|local|volunteer\w*|staff\w*|technician\w*)\b"), 2.0, 8.0),
    (_rx(r"\b(maint\w*|repair\w*|spare parts?|sustain\w*|hand ?over|handover)\b"), 3.0, 6.0),
    (_rx(r"\b(risks?|mitigat\w*|contingenc\w*|fallback)\b"), 3.0, 6.0),
)
_GRANDIOSE = _rx(
    r"\b(entire world|whole world|every country|all (poverty|hunger|disease)|end (all|world)|"
    r"everyone on earth|overnight|instantly|immediately solve|guaranteed|100% of)\b"
)
_COST_CUES = (
    (
        _rx(
            r"[$€£¥₹]\s?\d|\b\d[\d,.]*\s?(usd|eur|dollars?|euros?|shillings?|rupees?|naira|cents?)\b"
        ),
        5.0,
        10.0,
    ),
    (
        _rx(r"\bper (person|household|family|student|patient|child|farmer|month|year|day)\b"),
        4.0,
        8.0,
    ),
    (_rx(r"\b(cost|budget|funding|fund|fee|price|tariff|financ\w*|pay-as-you-go)\b"), 2.0, 6.0),
    (
        _rx(
            r"\b(low-cost|cheap\w*|affordable|free|donated|existing|reus\w*|open-source|volunteer\w*|"
            r"local materials?|community labou?r|sav(e|es|ings))\b"
        ),
        3.0,
        9.0,
    ),
)
_EXPENSIVE = _rx(r"\b(billions?|unlimited|luxury|premium|brand-new city)\b")


def _cue_points(text: str, cues: tuple[tuple[re.Pattern[str], float, float], ...]) -> float:
    total = 0.0
    for pattern, points, cap in cues:
        distinct = {m.group(0).lower() for m in pattern.finditer(text)}
        total += min(points * len(distinct), cap)
    return total


def _length_points(words: int) -> float:
    """A solution of a few words cannot describe a plan; beyond ~100 words detail stops adding."""
    if words < 10:
        return -14.0
    if words < 20:
        return -4.0
    return min(8.0, 8.0 * math.log(words / 20, 5))


def _score(anchor_margin: float, points: float) -> float:
    value = NEUTRAL + ANCHOR_WEIGHT * math.tanh(anchor_margin / ANCHOR_SCALE) + points
    return round(min(100.0, max(0.0, value)), 1)


def solution_scores(text: str, anchor_margins: Mapping[str, float]) -> SolutionScores:
    """Scores a solution's full text (title, description, approach) given its anchor margins."""
    words = len(text.split())
    grandiose = 10.0 * min(2, len(_GRANDIOSE.findall(text)))
    length = _length_points(words)
    impact = _cue_points(text, _IMPACT_CUES) + length / 2 - grandiose / 2
    feasibility = _cue_points(text, _FEASIBILITY_CUES) + length - grandiose
    cost = _cue_points(text, _COST_CUES) + length / 2 - 10.0 * min(2, len(_EXPENSIVE.findall(text)))
    return SolutionScores(
        impact=_score(anchor_margins.get("impact", 0.0), impact),
        feasibility=_score(anchor_margins.get("feasibility", 0.0), feasibility),
        cost_efficiency=_score(anchor_margins.get("cost_efficiency", 0.0), cost),
    )
