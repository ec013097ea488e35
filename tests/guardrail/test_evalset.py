"""The labeled evaluation set: its composition, and what Layer A achieves on it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from services.core.domains import DOMAINS
from services.guardrail.rules.engine import RuleSet, default_ruleset
from services.guardrail.rules.report import format_markdown, layer_a_report, load_evalset

EVALSET = Path(__file__).with_name("evalset.jsonl")
LABELS = {"aligned", "off_topic", "harmful", "benign_trigger"}
CONTENT_TYPES = {"problem", "solution", "debate"}
FIELDS = {"id", "content_type", "text", "label", "domain", "category", "obfuscated"}
# Floors Layer A meets with some margin (see the report for the current numbers). Layer A alone is
# not meant to catch every harmful item: the classifier and human review handle the rest.
MAX_FALSE_POSITIVE_RATE = 0.02
MIN_HARMFUL_CATCH_RATE = 0.80
MIN_OBFUSCATED_CATCH_RATE = 0.90
MIN_CATEGORY_RECALL = 0.60


@pytest.fixture(scope="module")
def items() -> list[dict[str, Any]]:
    return load_evalset(EVALSET)


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return default_ruleset()


@pytest.fixture(scope="module")
def report(rules: RuleSet) -> dict[str, Any]:
    return layer_a_report(EVALSET, rules)


def test_items_are_well_formed(items: list[dict[str, Any]], rules: RuleSet) -> None:
    ids = [item["id"] for item in items]
    assert len(ids) == len(set(ids))
    for item in items:
        assert set(item) == FIELDS, item["id"]
        assert item["label"] in LABELS, item["id"]
        assert item["content_type"] in CONTENT_TYPES, item["id"]
        assert isinstance(item["obfuscated"], bool), item["id"]
        assert len(item["text"]) >= 10, item["id"]
        if item["label"] in ("aligned", "benign_trigger"):
            assert item["domain"] in DOMAINS, item["id"]
        else:
            assert item["domain"] is None, item["id"]
        if item["label"] == "harmful":
            assert item["category"] in rules.categories, item["id"]
        else:
            assert item["category"] is None and not item["obfuscated"], item["id"]
    texts = [item["text"] for item in items]
    assert len(texts) == len(set(texts)), "duplicate texts"


def test_composition(items: list[dict[str, Any]], rules: RuleSet) -> None:
    labels = Counter(item["label"] for item in items)
    assert len(items) >= 330
    assert labels["aligned"] >= 150
    assert labels["off_topic"] >= 30
    assert labels["harmful"] >= 96
    assert labels["benign_trigger"] >= 40

    aligned_domains = Counter(i["domain"] for i in items if i["label"] == "aligned")
    assert set(aligned_domains) == set(DOMAINS)
    assert min(aligned_domains.values()) >= 8, aligned_domains

    categories = Counter(i["category"] for i in items if i["label"] == "harmful")
    assert set(categories) == set(rules.categories)
    assert min(categories.values()) >= 8, categories
    assert sum(i["obfuscated"] for i in items) >= 30

    content_types = Counter(i["content_type"] for i in items)
    assert set(content_types) == CONTENT_TYPES
    # Realistic lengths: short debate replies up to multi-sentence problem reports.
    longest = max(len(i["text"]) for i in items if i["label"] == "aligned")
    assert longest > 400


def test_layer_a_has_no_false_positives_to_speak_of(report: dict[str, Any]) -> None:
    assert report["false_positive_rate"] < MAX_FALSE_POSITIVE_RATE, report["false_positives"]


def test_layer_a_catch_rates(report: dict[str, Any]) -> None:
    assert report["harmful_catch_rate"] >= MIN_HARMFUL_CATCH_RATE, report["missed"]
    assert report["obfuscated_catch_rate"] >= MIN_OBFUSCATED_CATCH_RATE, report["missed"]
    for category, recall in report["category_recall"].items():
        assert recall >= MIN_CATEGORY_RECALL, category
    # A rejection names the right category, not some other rule that happened to fire.
    assert report["category_named_rate"] >= 0.95


def test_layer_a_legitimately_misses_some_harm(report: dict[str, Any]) -> None:
    # Harm phrased without any forbidden wording is left to Layer B; a perfect score here would
    # mean the set was written to the rules.
    assert report["missed"]


def test_shortcuts_match_exhaustive_evaluation(items: list[dict[str, Any]], rules: RuleSet) -> None:
    for item in items:
        fast = rules.evaluate(item["text"])
        full = rules.evaluate(item["text"], exhaustive=True)
        assert fast.matches == full.matches, item["id"]


def test_markdown_report(report: dict[str, Any]) -> None:
    text = format_markdown(report)
    assert "| label | items | rejected by Layer A | passed |" in text
    assert "| harmful caught by Layer A alone |" in text
    for category in report["category_recall"]:
        assert f"| {category} |" in text
