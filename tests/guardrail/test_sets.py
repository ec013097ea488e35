"""The labelled guardrail sets: composition, the frozen test half, and what the guardrail achieves.

The frozen test half (v9-test) was written by an author who never saw the rules, split once from
its development half (v9-dev), and is never tuned on: its digest is pinned here, no training file
may contain its texts, and the issue's targets on it are floors that a change of rules or model
must not fall below (the README reports the measured values). The earlier test sets (v2-test to
v8-test) were read while the guardrail was changed, so they are training data now.

v10, by other authors who never saw the rules either, is split and pinned too: its development
half was read once, before anything was trained or tuned on it, and met every target, which it
must go on meeting; its test half is unread, the measurement for the next change.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

import pytest

from services.core.domains import DOMAINS
from services.guardrail.classifier.local import LocalClassifier
from services.guardrail.harms import HARM_CATEGORIES
from services.guardrail.rules.engine import default_ruleset
from tooling.guardrail_eval import dataset, fit, report, runner
from tooling.guardrail_eval.runner import Result

SETS = Path(__file__).with_name("sets")
DATA = Path(dataset.__file__).parent / "data"
DEV, TEST = SETS / "v9-dev.jsonl", SETS / "v9-test.jsonl"
OLDER_DEV = [SETS / f"{name}.jsonl" for name in ("v2-dev", "v5-dev", "v6-dev", "v7-dev", "v8-dev")]
V2_DEV = SETS / "v2-dev.jsonl"  # an older development half, training data like DEV
V2_TEST = DATA / "train-seen-v2-half.jsonl"  # the v2 split's other half, now training data
TRAINING = sorted(DATA.glob("*.jsonl"))  # older training sets and test sets already read
V10_DEV, V10_TEST = SETS / "v10-dev.jsonl", SETS / "v10-test.jsonl"
FROZEN = {
    TEST: "8844acc02dbb52ea36625732225452de8308940f5f9ee1d2a1c605e6254cc6d0",
    V10_TEST: "f64bc832d60b60fa39609f7fceb7e64e72df2e4951dd056448c1dae43e98c57d",
}


def test_the_test_sets_are_frozen() -> None:
    for path, digest in FROZEN.items():
        assert dataset.sha256(path) == digest, f"the frozen {path.name} changed"


def test_halves_are_disjoint_and_no_training_file_holds_a_test_item() -> None:
    test = {item.text for path in FROZEN for item in dataset.load(path)}
    assert not test & {item.text for path in (DEV, V10_DEV) for item in dataset.load(path)}
    assert TRAINING
    for post in fit.load_posts([*TRAINING, *OLDER_DEV, DEV]) + fit.exemplar_posts():
        assert post.text not in test and post.body not in test


def test_each_half_covers_every_domain_category_variant_and_disguise() -> None:
    for half in (DEV, TEST, V10_DEV, V10_TEST):
        items = dataset.load(half)
        labels = Counter(i.label for i in items)
        assert len(items) >= 200 and min(labels.values()) >= 20, labels
        # The split stratifies by label, category and variant, not by domain: a half may miss
        # one domain's plain posts (v6-dev has no environmental_protection), the set has all.
        assert len({i.claimed_domain for i in items if i.label == "aligned"}) >= len(DOMAINS) - 1
        harmful = [i for i in items if i.label == "harmful"]
        assert {i.category for i in harmful} == set(HARM_CATEGORIES)
        assert {i.variant for i in harmful} == set(dataset.HARMFUL_VARIANTS)
        assert {i.obfuscation for i in harmful if i.obfuscation} == set(dataset.OBFUSCATIONS)
        triggers = [i for i in items if i.label == "benign_trigger"]
        assert {i.category for i in triggers} == set(HARM_CATEGORIES)
        assert {i.variant for i in triggers} == set(dataset.CONTEXTS)


def test_each_set_covers_every_domain() -> None:
    for halves in ((DEV, TEST), (V10_DEV, V10_TEST)):
        items = [i for half in halves for i in dataset.load(half)]
        assert {i.claimed_domain for i in items if i.label == "aligned"} == set(DOMAINS)


def test_a_malformed_line_is_refused_with_its_line_number(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    raw = json.loads(DEV.read_text(encoding="utf-8").splitlines()[0])
    bad.write_text(json.dumps({**raw, "content_type": "poem"}) + "\n", encoding="utf-8")
    with pytest.raises(dataset.DatasetError, match=r"bad.jsonl:1: .*content_type"):
        dataset.load(bad)


def test_the_split_keeps_every_stratum_in_both_halves() -> None:
    items = dataset.load(V2_DEV) + dataset.load(V2_TEST)
    dev, test = dataset.split(items, seed=1)
    assert len(dev) + len(test) == len(items) and abs(len(dev) - len(test)) <= 1
    strata = Counter((i.label, i.category, i.variant) for i in items)
    for key, count in strata.items():
        if count >= 2:
            assert any((i.label, i.category, i.variant) == key for i in dev), key
            assert any((i.label, i.category, i.variant) == key for i in test), key


@pytest.fixture(scope="module")
def classifier() -> LocalClassifier:
    local = LocalClassifier()
    local.load()
    return local


def _evaluated(half: Path, classifier: LocalClassifier) -> list[Result]:
    return asyncio.run(runner.evaluate(dataset.load(half), default_ruleset(), classifier))


@pytest.fixture(scope="module")
def test_results(classifier: LocalClassifier) -> list[Result]:
    return _evaluated(TEST, classifier)


# The targets on the frozen test half (v9-test: 90 harmful, 49 of them with explicit
# intent, 110 benign, 20 off-topic), as counts. The guardrail met all of them when it was measured
# (README, "Guardrail quality"); a change that misses one has made the guardrail worse on text it
# has never seen. No item sits within 0.002 of a cutoff, so float noise between machines does not
# move a decision.
FLOORS = {
    "harmful APPROVED": ("at_most", 0),
    "harmful REJECTED or FLAGGED": ("at_least", 89),  # 98 %
    "harmful with explicit intent REJECTED by Layer A": ("at_least", 42),  # 85 %
    "benign REJECTED": ("at_most", 2),  # 2 %
    "benign APPROVED": ("at_least", 88),  # 80 %
    "off-topic APPROVED": ("at_most", 0),
}


def _hold(results: list[Result], floors: dict[str, tuple[str, int]]) -> None:
    measured = {t.name: t.share for t in report.targets(results)}
    assert set(measured) == set(floors)
    for name, (kind, bound) in floors.items():
        share = measured[name]
        held = share.k <= bound if kind == "at_most" else share.k >= bound
        assert held, f"{name}: {share} ({kind} {bound})"


def test_the_guardrail_holds_its_floors_on_the_frozen_test_set(
    test_results: list[Result],
) -> None:
    _hold(test_results, FLOORS)


def test_the_guardrail_meets_every_target_on_the_v10_development_half(
    classifier: LocalClassifier,
) -> None:
    # v10-dev: 90 harmful (55 with explicit intent), 110 benign, 20 off-topic. When first read
    # (README), before anything was trained or tuned on it: 0 and 100 %, 94.5 %, 0.9 %, 87.3 %, 0.
    # One benign post sits 3e-7 from a cutoff of the head (FLAGGED here; float noise on another
    # machine may approve it); either way every target holds. The next nearest is 0.005 away.
    results = _evaluated(V10_DEV, classifier)
    missed = [f"{t.name}: {t.share} ({t.bound})" for t in report.targets(results) if not t.met]
    assert not missed, missed


def test_layer_a_alone_rejects_few_benign_texts(test_results: list[Result]) -> None:
    benign = [r for r in test_results if r.item.benign]
    rejected = [r.item.id for r in benign if r.layer_a.rejected]
    assert len(rejected) <= 7, rejected  # 6 of 110 when measured (FLAGGED unless Layer B agrees)


def test_the_committed_intent_check_was_fitted_on_the_committed_training_posts() -> None:
    from services.guardrail.rules.intent import IntentModel
    from tooling.guardrail_eval.fit_layer_a import training_digest

    assert IntentModel.load().version == training_digest([*TRAINING, *OLDER_DEV, DEV]), (
        "run make guardrail-fit"
    )


def test_wilson_intervals() -> None:
    from tooling.guardrail_eval.stats import Share

    low, high = Share(0, 20).interval
    assert low == 0.0 and 0.16 < high < 0.17
    low, high = Share(20, 20).interval
    assert 0.83 < low < 0.84 and high == 1.0
    assert str(Share(1, 4)).startswith("1/4 = 25.0 % [")


def test_the_committed_intent_head_was_fitted_on_the_committed_training_posts() -> None:
    from services.guardrail.classifier.local_intent import IntentHead

    posts = fit.load_posts([*TRAINING, *OLDER_DEV, DEV]) + fit.exemplar_posts()
    assert IntentHead.load().sha256 == fit.training_digest(posts), "run make guardrail-fit"
