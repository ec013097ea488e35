"""Fits the local classifier's intent head: `python -m tooling.guardrail_eval.fit --train ...`.

Training posts come from labelled JSONL files in the evaluation format (`dataset.Item`), from
files in the older one-text format (`text`, `label`), and from the classifier's exemplars. The
frozen test set must never be passed here. Cutoffs are chosen on out-of-fold predictions (5
folds, three shuffles pooled): approval sits above all but MAX_PASSED_APPROVED of the harmful
and off-topic training posts that Layer A's rules let through, and HIGH harm (rejection) where
at most MAX_BENIGN_REJECTED of the benign posts reach.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from services.core.embeddings.factory import classifier_model
from services.guardrail.classifier.base import ContentItem, ContentType
from services.guardrail.classifier.local_index import EXEMPLARS_PATH
from services.guardrail.classifier.local_intent import (
    CLASSES,
    INTENT_PATH,
    Cutoffs,
    IntentHead,
    features,
    unit_mean,
)
from services.guardrail.classifier.local_text import windows
from services.guardrail.rules.engine import RuleSet, default_ruleset
from tooling.guardrail_eval import dataset

C = 1.0
EMBEDDING_WEIGHT = 2.0
MIN_DF = 3
REPEATS = 3
# Approval sits above all but this share of the harmful and off-topic training posts that
# Layer A lets through (out of fold): a single outlier would otherwise halve the approvals.
MAX_PASSED_APPROVED = 0.01
MAX_BENIGN_REJECTED = 0.01
MIN_REJECT_AT = 0.90
MARGIN = 0.001


@dataclass(frozen=True)
class Post:
    """One training post and its class."""

    title: str
    body: str
    content_type: str
    label: str  # one of CLASSES

    @property
    def text(self) -> str:
        return f"{self.title}\n{self.body}".strip()


def _class(label: str) -> str:
    return "benign" if label in dataset.BENIGN else label


def load_posts(paths: list[Path]) -> list[Post]:
    """Posts from evaluation-format or one-text-format JSONL files."""
    posts = []
    for path in paths:
        for raw in dataset.records(path):
            if "text" in raw:
                posts.append(Post("", raw["text"], raw["content_type"], _class(raw["label"])))
            else:
                item = dataset.Item(**raw)
                posts.append(
                    Post(item.title, item.description, item.content_type, _class(item.label))
                )
    return posts


def exemplar_posts(path: Path = EXEMPLARS_PATH) -> list[Post]:
    """The classifier's curated exemplars as training posts."""
    raw = json.loads(path.read_text(encoding="utf-8"))

    def text(entry: object) -> str:
        return entry if isinstance(entry, str) else str(entry["text"])  # type: ignore[index]

    posts = [
        Post("", text(t), "problem", "benign") for group in raw["domains"].values() for t in group
    ]
    posts += [Post("", text(t), "problem", "benign") for t in raw["benign_contrast"]]
    posts += [
        Post("", text(t), "problem", "harmful") for group in raw["harms"].values() for t in group
    ]
    posts += [Post("", text(t), "problem", "off_topic") for t in raw["off_topic"]]
    return posts


def training_digest(posts: list[Post]) -> str:
    """Digest of the training posts and their classes (in any order), recorded in the head."""
    lines = sorted({f"{p.label}\t{p.content_type}\t{p.text}" for p in posts})
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def embed(posts: list[Post]) -> npt.NDArray[np.float64]:
    """Each post's mean window embedding (L2-normalized), as the classifier computes it."""
    provider = classifier_model()
    rows = []
    for post in posts:
        item = ContentItem(ContentType(post.content_type), post.title, post.body)
        rows.append(unit_mean(provider.embed(windows(item))))
    return np.asarray(rows, dtype=np.float64)


def _same(grams: list[str]) -> list[str]:
    return grams


def _fit(
    grams: list[list[str]], vectors: npt.NDArray[np.float64], y: npt.NDArray[np.str_]
) -> tuple[CountVectorizer, LogisticRegression]:
    vectorizer = CountVectorizer(analyzer=_same, min_df=MIN_DF, binary=True)
    words = vectorizer.fit_transform(grams).toarray()
    model = LogisticRegression(C=C, max_iter=5000)
    model.fit(np.hstack([words, vectors * EMBEDDING_WEIGHT]), y)
    return vectorizer, model


def _predict(
    vectorizer: CountVectorizer,
    model: LogisticRegression,
    grams: list[list[str]],
    vectors: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    words = vectorizer.transform(grams).toarray()
    probs = model.predict_proba(np.hstack([words, vectors * EMBEDDING_WEIGHT]))
    order = [list(model.classes_).index(c) for c in CLASSES]
    return probs[:, order]


def _quantile(values: npt.NDArray[np.float64], share: float) -> float:
    ordered = np.sort(values)
    return float(ordered[round(share * (len(ordered) - 1))])


def cutoffs(posts: list[Post], probs: npt.NDArray[np.float64]) -> Cutoffs:
    """Cutoffs from out-of-fold probabilities (columns in CLASSES order)."""
    # The hand-written rules only: the learned intent check was fitted on these same posts, so
    # what it lets through here would understate what it lets through on new text.
    rules = RuleSet.load()
    passed = [
        i
        for i, p in enumerate(posts)
        if p.label != "benign" and not rules.evaluate(p.text).rejected
    ]
    approve_at = max(0.5, _quantile(probs[passed, 0], 1 - MAX_PASSED_APPROVED) + MARGIN)
    benign = probs[[i for i, p in enumerate(posts) if p.label == "benign"], 1]
    reject_at = max(MIN_REJECT_AT, _quantile(benign, 1 - MAX_BENIGN_REJECTED) + MARGIN)
    return Cutoffs(
        approve_at=round(approve_at, 4),
        flag_at=round(1 - approve_at, 4),
        reject_at=round(reject_at, 4),
    )


def fit(posts: list[Post], model_id: str) -> IntentHead:
    """Fits the head on all posts; cutoffs from 5-fold out-of-fold predictions (REPEATS times).

    Posts are put in one canonical order first, so the head does not depend on file order.
    """
    posts = sorted(set(posts), key=lambda p: (p.label, p.text, p.content_type))
    rules = default_ruleset()
    grams = [features(p.text, rules) for p in posts]
    vectors = embed(posts)
    y = np.asarray([p.label for p in posts])
    # Out-of-fold probabilities of REPEATS shuffles, pooled (one split's luck moved the approval
    # cutoff by 0.02). Pooled, not averaged: an average of three models' probabilities is less
    # extreme than the one model that ships, and would put the cutoff too low.
    runs = []
    for seed in range(REPEATS):
        oof = np.zeros((len(posts), len(CLASSES)))
        for train, held in StratifiedKFold(5, shuffle=True, random_state=seed).split(grams, y):
            vec, model = _fit([grams[i] for i in train], vectors[train], y[train])
            oof[held] = _predict(vec, model, [grams[i] for i in held], vectors[held])
        runs.append(oof)
    oof, pooled = np.vstack(runs), np.tile(y, REPEATS)
    vectorizer, model = _fit(grams, vectors, y)
    limits = cutoffs(posts * REPEATS, oof)
    benign = pooled == "benign"
    print(
        "out of fold: benign approved "
        f"{np.mean(oof[benign, 0] >= limits.approve_at):.3f}, benign at HIGH harm "
        f"{np.mean(oof[benign, 1] >= limits.reject_at):.3f}, harmful approved by the head alone "
        f"{np.mean(oof[pooled == 'harmful', 0] >= limits.approve_at):.3f}"
    )
    order = [list(model.classes_).index(c) for c in CLASSES]
    vocabulary = {str(g): int(i) for g, i in vectorizer.vocabulary_.items()}
    return IntentHead(
        vocabulary=vocabulary,
        weights=model.coef_[order],
        bias=model.intercept_[order],
        embedding_weight=EMBEDDING_WEIGHT,
        cutoffs=limits,
        model_id=model_id,
        sha256=training_digest(posts),
    )


def is_frozen(path: Path) -> bool:
    """A frozen test half (`tests/guardrail/sets/*-test.jsonl`); sets already read as test sets
    and kept as training data live elsewhere (`data/seen-*.jsonl`)."""
    return path.name.endswith("-test.jsonl") and path.parent.name == "sets"


def main(argv: list[str] | None = None) -> int:
    """Fits on the given files plus the exemplars and writes the head next to them."""
    parser = argparse.ArgumentParser(description="Fit the local classifier's intent head.")
    parser.add_argument("--train", type=Path, nargs="+", required=True, help="labelled JSONL files")
    parser.add_argument("--out", type=Path, default=INTENT_PATH)
    args = parser.parse_args(argv)
    if any(is_frozen(path) for path in args.train):
        parser.error("the frozen test set is never training data")
    posts = load_posts(args.train) + exemplar_posts()
    head = fit(posts, classifier_model().model_id)
    args.out.write_text(head.to_json() + "\n", encoding="utf-8")
    counts = {c: sum(p.label == c for p in posts) for c in CLASSES}
    print(f"fitted on {len(posts)} posts {counts}; cutoffs {head.cutoffs}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
