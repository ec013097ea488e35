"""The local Layer B classifier: domains, off-topic, harm, solution scores, determinism, speed.

Every text here was written for this test; none comes from the exemplars or the evaluation set.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from services.core.domains import DOMAINS
from services.guardrail.classifier.base import (
    Classification,
    ClassifierError,
    ContentItem,
    ContentType,
    HarmRisk,
)
from services.guardrail.classifier.local import LocalClassifier
from services.guardrail.classifier.local_fit import FittedParams, fit_path
from services.guardrail.classifier.local_index import (
    EXEMPLARS_PATH,
    HARM_CATEGORIES,
    Exemplars,
)
from services.guardrail.classifier.local_quality import solution_scores
from services.guardrail.classifier.local_text import deobfuscated, windows
from tooling.guardrail_eval import dataset

P, S, D = ContentType.PROBLEM, ContentType.SOLUTION, ContentType.DEBATE
TEST_HALF = Path(__file__).resolve().parents[1] / "sets" / "v9-test.jsonl"
AT_LEAST_MEDIUM = (HarmRisk.MEDIUM, HarmRisk.HIGH)

ALIGNED = [
    (
        "clean_water_sanitation",
        ContentItem(
            P,
            "Contaminated wells in the hill villages",
            "Tests of the village wells found fecal bacteria in most samples, and children keep "
            "getting sick with diarrhea after drinking the water.",
        ),
    ),
    (
        "education_access",
        ContentItem(
            P,
            "Rural pupils cannot reach secondary school",
            "The nearest secondary school is 25 km away with no bus, so most children in the "
            "valley stop studying after primary school.",
        ),
    ),
    (
        "healthcare_improvement",
        ContentItem(
            S,
            "Community health workers for remote villages",
            "Recruit and train 60 community health workers to treat childhood malaria and "
            "pneumonia at home, supervised by the district clinic, with monthly drug resupply.",
        ),
    ),
    (
        "sustainable_energy",
        ContentItem(
            S,
            "Solar home systems",
            "Replace kerosene lamps in 2,000 off-grid homes with small solar home systems sold on "
            "pay-as-you-go plans, and train local technicians to repair them.",
        ),
    ),
    (
        "elder_care",
        ContentItem(
            P,
            "Isolated seniors",
            "Older people living alone in the apartment blocks rarely leave home, and some go a "
            "whole week without talking to anyone.",
        ),
    ),
    (
        "biodiversity_conservation",
        ContentItem(
            S,
            "Protecting turtle nesting beaches",
            "Train local volunteers to guard sea turtle nesting beaches at night, move threatened "
            "nests to a hatchery, and count hatchlings every season.",
        ),
    ),
    (
        "food_security",
        ContentItem(
            P,
            "Hunger during the lean season",
            "Families in the district run out of stored grain months before the next harvest and "
            "cut down to one meal a day.",
        ),
    ),
    (
        "mental_health_wellbeing",
        ContentItem(
            D,
            "",
            "I support the counseling program, but it should also train teachers to spot "
            "students with depression and refer them early.",
        ),
    ),
]

OFF_TOPIC = [
    ContentItem(D, "", "Anyone watching the big game tonight? I think the visitors win by two."),
    ContentItem(
        S,
        "Weekend deals",
        "Get 30% off all designer handbags this weekend only with free express shipping.",
    ),
    ContentItem(
        P,
        "My sourdough",
        "My sourdough bread keeps coming out flat; should I add more flour or let it rise longer?",
    ),
    ContentItem(
        D,
        "",
        "Did you see what the pop star wore at the awards show? Everyone is talking about it.",
    ),
]
# An ad that is also a get-rich pitch: off-topic, or possible financial harm; never approvable.
TOKEN_PITCH = ContentItem(
    S,
    "Token launch",
    "Buy our new token before it lists on exchanges next week, early holders will get rich.",
)

HARMFUL = [
    (
        "surveillance",
        "Put hidden cameras with face recognition on every corner to secretly log where each "
        "resident goes and who they meet.",
    ),
    (
        "financial_exploitation",
        "Offer emergency loans to flood victims at 300% interest and seize their land if they "
        "miss a payment.",
    ),
    (
        "social_engineering",
        "Phone elderly residents pretending to be their bank's fraud team and ask them to read "
        "out their card PIN.",
    ),
    (
        "labor_exploitation",
        "Hold the migrant workers' passports and make them work 16 hours a day until their "
        "recruitment debt is paid.",
    ),
    (
        "pseudo_science",
        "Tell parents to skip measles vaccines and give their children homeopathic drops instead.",
    ),
    (
        "deepfakes",
        "Produce an AI-generated video of the opposition leader confessing to crimes he never "
        "committed and spread it before the vote.",
    ),
    (
        "discrimination",
        "Give housing aid only to families of the majority ethnicity and turn away everyone else.",
    ),
    ("weapons", "Teach the youth group how to assemble homemade explosives from fertilizer."),
]

CONCRETE_SOLUTION = ContentItem(
    S,
    "Village pump maintenance network",
    "Phase 1 (months 1-3): train two caretakers in each of 40 villages, with the district water "
    "office as partner. Phase 2: a spare-parts shop run by the water committee, funded by a fee "
    "of $0.50 per household per month. Expected to keep 90% of pumps working and give 12,000 "
    "people safe water within two years, tracked by monthly pump logs. Risks: caretaker "
    "turnover, mitigated by paying a small stipend.",
)
VAGUE_SOLUTION = ContentItem(S, "Awareness", "We should raise awareness so things get better.")


@pytest.fixture(scope="module")
def classifier() -> LocalClassifier:
    local = LocalClassifier()
    local.load()
    return local


def test_calibration_file_was_fitted_on_this_exemplar_file() -> None:
    exemplars = Exemplars.load()
    params = FittedParams.from_json(fit_path().read_text())
    assert params.exemplars_sha256 == exemplars.sha256, (
        "exemplars changed: run python -m tooling.guardrail_eval.fit_exemplars"
    )
    assert params.harm_low < params.harm_medium <= params.harm_high


def test_exemplar_sets_have_the_documented_sizes() -> None:
    data = json.loads(EXEMPLARS_PATH.read_text())
    assert set(data["domains"]) == set(DOMAINS)
    assert all(12 <= len(v) <= 21 for v in data["domains"].values())
    assert set(data["harms"]) == set(HARM_CATEGORIES)
    assert all(8 <= len(v) <= 15 for v in data["harms"].values())
    assert len(data["off_topic"]) >= 30


def _words(text: str) -> frozenset[str]:
    return frozenset(re.findall(r"[a-z0-9]+", text.lower()))


def test_no_frozen_test_item_leaked_into_the_exemplars() -> None:
    evaluation = [_words(item.text) for item in dataset.load(TEST_HALF)]
    for text in Exemplars.load().texts:
        mine = _words(text)
        for other in evaluation:
            overlap = len(mine & other) / max(len(mine | other), 1)
            assert overlap < 0.5, f"exemplar too close to an evaluation item: {text!r}"


@pytest.mark.parametrize(("domain", "item"), ALIGNED, ids=[d for d, _ in ALIGNED])
def test_clearly_aligned_content_gets_its_domain_and_a_high_score(
    classifier: LocalClassifier, domain: str, item: ContentItem
) -> None:
    result = classifier.classify_sync(item)
    assert result.aligned_domain == domain
    # 0.70 is the approval cut-off. These two-sentence posts are approved, or (one of them since
    # the intent head was refitted on 3,070 posts) fall just short of it and go to a person:
    # never near a rejection.
    assert result.alignment_score >= 0.65
    assert result.harm_risk is not HarmRisk.HIGH
    assert result.model == "local-minilm-exemplars-v1+intent"
    assert result.cost_cents == 0


def test_claimed_domain_wins_a_near_tie(classifier: LocalClassifier) -> None:
    text = (
        "Form savings groups for women market traders with bookkeeping lessons and small loans "
        "so they can grow their businesses."
    )
    votes = [
        classifier.classify_sync(ContentItem(S, "Savings groups", text, claimed_domain=d))
        for d in ("gender_equality", "poverty_reduction")
    ]
    assert [v.aligned_domain for v in votes] == ["gender_equality", "poverty_reduction"]
    unrelated = classifier.classify_sync(
        ContentItem(S, "Savings groups", text, claimed_domain="biodiversity_conservation")
    )
    assert unrelated.aligned_domain != "biodiversity_conservation"


@pytest.mark.parametrize("item", OFF_TOPIC, ids=lambda i: i.body[:20])
def test_off_topic_content_scores_low(classifier: LocalClassifier, item: ContentItem) -> None:
    result = classifier.classify_sync(item)
    assert result.alignment_score < 0.4
    assert result.aligned_domain is None


def test_a_token_pitch_is_off_topic_or_possible_harm(classifier: LocalClassifier) -> None:
    result = classifier.classify_sync(TOKEN_PITCH)
    assert result.alignment_score < 0.4
    assert result.aligned_domain is None or result.harm_risk in AT_LEAST_MEDIUM


@pytest.mark.parametrize(("category", "text"), HARMFUL, ids=[c for c, _ in HARMFUL])
def test_harmful_intent_is_at_least_medium_risk_in_its_category(
    classifier: LocalClassifier, category: str, text: str
) -> None:
    result = classifier.classify_sync(ContentItem(S, "A plan for the community", text))
    assert result.harm_risk in AT_LEAST_MEDIUM
    assert result.harm_categories[0] == category
    # Never auto-approvable: low alignment, or uncertain and so sent to a human.
    assert result.alignment_score < 0.7 or result.uncertain


def test_obfuscated_harm_is_read_through(classifier: LocalClassifier) -> None:
    text = "Sell g.r.e.n.a.d.e.s and 4mmun1t10n to the street gangs near the school."
    assert "grenades" in deobfuscated(text)
    result = classifier.classify_sync(ContentItem(D, "", text))
    assert result.harm_risk in AT_LEAST_MEDIUM
    assert "weapons" in result.harm_categories


def test_solution_scores_only_for_solutions_and_within_range(
    classifier: LocalClassifier,
) -> None:
    for _, item in ALIGNED:
        result = classifier.classify_sync(item)
        if item.content_type == S:
            assert result.solution_scores is not None
            scores = result.solution_scores
            assert all(0 <= s <= 100 for s in (scores.impact, scores.feasibility))
            assert 0 <= scores.cost_efficiency <= 100
        else:
            assert result.solution_scores is None


def test_a_concrete_plan_outscores_a_vague_one(classifier: LocalClassifier) -> None:
    concrete = classifier.classify_sync(CONCRETE_SOLUTION).solution_scores
    vague = classifier.classify_sync(VAGUE_SOLUTION).solution_scores
    assert concrete is not None and vague is not None
    assert concrete.composite >= 70
    assert vague.composite < 60
    for dimension in ("impact", "feasibility", "cost_efficiency"):
        assert getattr(concrete, dimension) > getattr(vague, dimension)


def test_quality_heuristics_penalize_grandiose_and_costly_plans() -> None:
    neutral = {"impact": 0.0, "feasibility": 0.0, "cost_efficiency": 0.0}
    plain = solution_scores(
        "Train volunteers to run weekly reading clubs for children in the public library.", neutral
    )
    grand = solution_scores(
        "Use blockchain to end all poverty in the entire world overnight with unlimited funding "
        "and billions of dollars.",
        neutral,
    )
    assert grand.feasibility < plain.feasibility
    assert grand.cost_efficiency < plain.cost_efficiency


def _fingerprint(result: Classification) -> str:
    extra = {k: v for k, v in result.extra.items() if k != "latency_ms"}
    payload = repr((result.aligned_domain, result.alignment_score, result.harm_risk))
    payload += repr((result.harm_categories, result.solution_scores, result.uncertain))
    payload += repr((result.reasoning, sorted(extra.items())))
    return hashlib.sha256(payload.encode()).hexdigest()


def test_same_input_same_output(classifier: LocalClassifier) -> None:
    items = [CONCRETE_SOLUTION, OFF_TOPIC[0], ALIGNED[0][1]]
    first = [_fingerprint(classifier.classify_sync(i)) for i in items]
    again = [_fingerprint(classifier.classify_sync(i)) for i in items]
    fresh = LocalClassifier()
    assert first == again == [_fingerprint(fresh.classify_sync(i)) for i in items]


async def test_async_classify_matches_sync(classifier: LocalClassifier) -> None:
    item = ALIGNED[2][1]
    result = await classifier.classify(item)
    assert _fingerprint(result) == _fingerprint(classifier.classify_sync(item))


def test_short_items_take_milliseconds(classifier: LocalClassifier) -> None:
    items = [item for _, item in ALIGNED] + OFF_TOPIC
    timings = []
    for item in items * 2:
        started = time.perf_counter()
        classifier.classify_sync(item)
        timings.append((time.perf_counter() - started) * 1000)
    # About 10 ms on an idle core (one embedding window); generous for a loaded CI box.
    assert statistics.median(timings) < 60


def test_long_text_is_cut_into_a_few_windows_keeping_head_and_tail() -> None:
    body = " ".join(f"Sentence {i} is about the village water committee." for i in range(200))
    parts = windows(ContentItem(S, "Water committee", body + " The last sentence is here."))
    assert len(parts) == 3
    assert parts[0].startswith("Water committee. Sentence 0 ")
    assert parts[-1].endswith("The last sentence is here.")
    assert all(len(p.split()) <= 40 for p in parts)
    assert windows(ContentItem(D, "", "")) == [""]


class _HashEmbedder:
    """A stand-in embedding model: bag of hashed words, so tests of plumbing need no ONNX."""

    model_id = "test-hash-embedder"
    dimensions = 64

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z]+", text.lower()):
                digest = hashlib.blake2b(word.encode(), digest_size=4).digest()
                out[row, int.from_bytes(digest) % self.dimensions] += 1.0
            out[row] /= max(float(np.linalg.norm(out[row])), 1e-6)
        return out


def test_an_intent_head_fitted_for_another_model_is_refused_not_misapplied() -> None:
    # The exemplar calibration is refitted in process, but the intent head needs the labelled
    # posts to refit: its weights in another model's space would be noise, so it is refused.
    local = LocalClassifier(_HashEmbedder(), use_disk_cache=False)
    with pytest.raises(ClassifierError) as failure:
        local.classify_sync(ALIGNED[0][1])
    assert not failure.value.retryable
    assert "tooling.guardrail_eval.fit" in str(failure.value)


def test_a_broken_exemplar_file_is_a_permanent_error(tmp_path: Path) -> None:
    broken = tmp_path / "v1.json"
    shutil.copy(EXEMPLARS_PATH, broken)
    data = json.loads(broken.read_text())
    data["domains"]["astrology"] = ["Read the stars to decide when to plant."] * 5
    broken.write_text(json.dumps(data))
    local = LocalClassifier(_HashEmbedder(), exemplars_path=broken, use_disk_cache=False)
    with pytest.raises(ClassifierError) as failure:
        local.classify_sync(ALIGNED[0][1])
    assert failure.value.retryable is False
