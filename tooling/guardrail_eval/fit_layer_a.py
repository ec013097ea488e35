"""Fits Layer A's intent check: `python -m tooling.guardrail_eval.fit_layer_a --train ...`.

Positives are harmful posts that state their intent (`explicit_intent`); negatives are benign
and off-topic posts; harmful posts without stated intent are left out (the check is for stated
plans; Layer B weighs the rest). Features are exactly what the check reads
(`RuleSet.intent_sentences`, `intent.text_features`). The threshold is chosen on out-of-fold
scores, the folds being the training files, so each fold's posts come from authors the rest
never saw: at most
MAX_BENIGN_HIT of the benign posts score above it. The frozen test set must never be passed.
`--holdout` scores a development set the fit did not see and prints its recall and benign hits.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from sklearn.feature_extraction import DictVectorizer
from sklearn.linear_model import LogisticRegression

from services.guardrail.rules.engine import RuleSet
from services.guardrail.rules.intent import DEFAULT_PATH, IntentModel, text_features
from tooling.guardrail_eval import dataset
from tooling.guardrail_eval.fit import is_frozen

C = 0.5
CATEGORY_C = 0.5
MIN_DF = 2
MAX_BENIGN_HIT = 0.02
KEEP = 0.05  # weights smaller than this are dropped from the file (the holdout shows no loss)


@dataclass(frozen=True)
class Example:
    """One labelled post as the intent check sees it."""

    text: str
    label: str  # intent | benign | other_harm
    category: str | None
    source: str


def load_examples(paths: list[Path]) -> list[Example]:
    """Posts from labelled JSONL files of either format (`title`/`description` or `text`)."""
    out = []
    for path in paths:
        for raw in dataset.records(path):
            text = raw.get("text") or f"{raw.get('title', '')}\n{raw.get('description', '')}"
            if raw["label"] == "harmful":
                explicit = raw.get("explicit_intent")
                if explicit is None:
                    continue  # an older set without the mark: neither class
                label = "intent" if explicit else "other_harm"
            else:
                label = "benign"
            out.append(Example(text.strip(), label, raw.get("category"), path.name))
    return out


def _features(rules: RuleSet, examples: list[Example]) -> list[dict[str, int]]:
    rows = []
    for example in examples:
        rows.append(dict.fromkeys(text_features(rules.intent_sentences(example.text)), 1))
    return rows


def _frequent(rows: list[dict[str, int]]) -> set[str]:
    counts: Counter[str] = Counter()
    for row in rows:
        counts.update(row.keys())
    return {f for f, n in counts.items() if n >= MIN_DF}


def _binary(
    rows: list[dict[str, int]], y: npt.NDArray[np.int_]
) -> tuple[LogisticRegression, DictVectorizer]:
    vectorizer = DictVectorizer()
    x = vectorizer.fit_transform(rows)
    model = LogisticRegression(C=C, class_weight="balanced", max_iter=2000)
    model.fit(x, y)
    return model, vectorizer


@dataclass(frozen=True)
class _Prepared:
    examples: list[Example]
    rows: list[dict[str, int]]
    y: npt.NDArray[np.int_]
    trains: npt.NDArray[np.bool_]  # the examples the model learns from (not other_harm)


def _prepare(train: list[Path]) -> _Prepared:
    rules = RuleSet.load()
    examples = load_examples(train)
    rows = _features(rules, examples)
    trains = np.array([e.label != "other_harm" for e in examples])
    keep = _frequent([r for r, t in zip(rows, trains, strict=True) if t])
    rows = [{f: 1 for f in row if f in keep} for row in rows]
    y = np.array([e.label == "intent" for e in examples], dtype=int)
    return _Prepared(examples, rows, y, trains)


def _out_of_fold(data: _Prepared) -> tuple[npt.NDArray[np.float64], float]:
    """Every example's score by a model fitted without its file, and the threshold those scores
    give (at most MAX_BENIGN_HIT of the benign examples reach it)."""
    sources = np.array([e.source for e in data.examples])
    scores = np.full(len(data.examples), -np.inf)
    for source in sorted(set(sources)):
        held = sources == source
        fitted = ~held & data.trains
        if data.y[fitted].min() == data.y[fitted].max():
            continue
        model, vectorizer = _binary(
            [r for r, f in zip(data.rows, fitted, strict=True) if f], data.y[fitted]
        )
        scores[held] = model.decision_function(
            vectorizer.transform([r for r, h in zip(data.rows, held, strict=True) if h])
        )
    benign = scores[(data.y == 0) & data.trains]
    return scores, float(np.quantile(benign, 1 - MAX_BENIGN_HIT)) + 1e-6


def fit(train: list[Path], version: str) -> tuple[IntentModel, dict[str, float]]:
    """The model and its out-of-fold figures (folds: the training files)."""
    data = _prepare(train)
    oof, threshold = _out_of_fold(data)
    rows = [r for r, t in zip(data.rows, data.trains, strict=True) if t]
    y, oof = data.y[data.trains], oof[data.trains]
    benign = oof[y == 0]
    figures = {
        "positives": float(y.sum()),
        "negatives": float((y == 0).sum()),
        "oof_recall": float(np.mean(oof[y == 1] >= threshold)),
        "oof_benign_hit": float(np.mean(benign >= threshold)),
    }
    model, vectorizer = _binary(rows, y)
    names = vectorizer.get_feature_names_out()
    weights = {
        str(n): round(float(w), 4)
        for n, w in zip(names, model.coef_[0], strict=True)
        if abs(w) >= KEEP
    }
    category_bias, category_weights = _categories(RuleSet.load(), train)
    return (
        IntentModel(
            version=version,
            bias=round(float(model.intercept_[0]), 4),
            weights=weights,
            threshold=round(threshold, 4),
            category_bias=category_bias,
            category_weights=category_weights,
        ),
        figures,
    )


def _categories(
    rules: RuleSet, train: list[Path]
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    harmful = [e for e in load_examples(train) if e.label != "benign" and e.category]
    rows = _features(rules, harmful)
    keep = _frequent(rows)
    vectorizer = DictVectorizer()
    x = vectorizer.fit_transform([{f: 1 for f in row if f in keep} for row in rows])
    model = LogisticRegression(C=CATEGORY_C, max_iter=2000)
    model.fit(x, [e.category for e in harmful])
    names = vectorizer.get_feature_names_out()
    weights = {
        str(c): {
            str(n): round(float(w), 3)
            for n, w in zip(names, model.coef_[i], strict=True)
            if abs(w) >= KEEP
        }
        for i, c in enumerate(model.classes_)
    }
    bias = {
        str(c): round(float(b), 3) for c, b in zip(model.classes_, model.intercept_, strict=True)
    }
    return bias, weights


def training_digest(paths: list[Path]) -> str:
    """The model's version: a digest of its training files (by name order), so a test can tell
    the committed model from one fitted on other posts."""
    digest = hashlib.sha256()
    for path in sorted(paths, key=lambda p: p.name):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def holdout(model: IntentModel, path: Path) -> dict[str, float]:
    """Recall on a development set's stated plans and the share of its benign posts hit."""
    rules = RuleSet.load().with_intent(model)
    examples = load_examples([path])
    hit = [rules.evaluate(e.text).rejected for e in examples]
    intent = [h for h, e in zip(hit, examples, strict=True) if e.label == "intent"]
    benign = [h for h, e in zip(hit, examples, strict=True) if e.label == "benign"]
    return {"recall": float(np.mean(intent)), "benign_hit": float(np.mean(benign))}


def main(argv: list[str] | None = None) -> int:
    """Fits the check, reports its out-of-fold figures and writes the model file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, nargs="+", required=True)
    parser.add_argument("--holdout", type=Path, action="append", default=[])
    parser.add_argument("--out", type=Path, default=DEFAULT_PATH)
    args = parser.parse_args(argv)
    if any(is_frozen(path) for path in args.train):
        parser.error("the frozen test set is never training data")
    model, figures = fit(args.train, training_digest(args.train))
    print(json.dumps(figures, indent=1))
    for path in args.holdout:
        print(path.name, json.dumps(holdout(model, path)))
    args.out.write_text(model.to_json() + "\n", encoding="utf-8")
    print(f"written to {args.out} ({len(model.weights)} weights)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
