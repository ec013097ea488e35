"""Layer A's learned intent check: a linear model over the de-obfuscated words of a text.

Hand-written rules catch the acts their authors thought of; on posts by an author who never saw
them they caught about half of the stated harmful plans. This check generalises the same idea
from labelled posts: its features are the words of the normalized sentences (the views
Layer A matches, so spacing, leetspeak, homoglyphs and zero-width characters are already
undone) and, marked apart, the words and word pairs that follow a stated plan ("we will", "our
volunteers are going to": PLAN_MARKERS) within PLAN_WINDOW words. A stated plan
next to an act is what the model weighs most; a harm word in a report or a protective context
weighs little, because the benign posts it was fitted on are full of them.

The model is data (`intent_model.v1.json`, written by `tooling.guardrail_eval.fit_layer_a`):
a bias and weights for "states a harmful plan", a threshold chosen out of fold so that few
benign posts reach it, and per-category weights that name the category of a text that does.
Scoring is a sum of dictionary lookups: a few hundred microseconds on 2,000 characters.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property, lru_cache
from itertools import compress, count, repeat
from operator import add
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

DEFAULT_PATH = Path(__file__).with_name("intent_model.v1.json")
PLAN_WINDOW = 14  # words after a stated plan that count as its act
# The model has seen no harmful post shorter than about 27 words: below this it would be
# guessing from a sentence's style, so shorter texts are left to the rules (and Layer B).
MIN_WORDS = 25
RULE_ID = "stated_intent"


class IntentModelError(ValueError):
    """The model file is missing fields or malformed."""


# Words that state the author's plan ("we will", "our team is going to", "I propose"): the words
# after one are read as its act.
PLAN_MARKERS = frozenset(
    "we i us our my will ll shall going plan plans planning intend intends propose proposal "  # noqa: SIM905
    "must should need let".split()
)


def text_features(sentences: list[str]) -> set[str]:
    """The features of a text's normalized sentences: their words, and the words and word pairs
    of each stated plan (a plan marker and up to PLAN_WINDOW words after it in its sentence:
    `>word`, `>a b`). One pass over the whole text, overlapping plans taken together: a call
    per plan costs more than the work. A plan never reaches past its sentence, so this is also
    the union of `sentence_features` (what `IntentModel.judge` computes, as it weighs each
    sentence too); the fitting tool, which needs only the text's, takes this cheaper path."""
    return _features(" . ".join(sentences).split())


def sentence_features(sentences: list[str]) -> list[set[str]]:
    """`text_features([s])` for each sentence `s`, in one call."""
    return [_features(sentence.split()) for sentence in sentences]


def _features(words: list[str]) -> set[str]:
    """The features of a text as its words, a "." between sentences."""
    found = set(words)
    found.discard(".")
    if PLAN_MARKERS.isdisjoint(found):
        return found
    spans: list[tuple[int, int]] = []
    # The markers' positions, found by C-level iterators: a Python loop over every word costs
    # more than all the rest.
    for i in compress(count(), map(PLAN_MARKERS.__contains__, words)):
        end = i + 1 + PLAN_WINDOW
        stop = words.index(".", i, min(end, len(words))) if "." in words[i:end] else end
        if spans and i < spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], stop))
        else:
            spans.append((i, stop))
    for start, stop in spans:
        plan = words[start:stop]
        marked = list(map(">".__add__, plan))
        found.update(marked[1:])
        found.update(map(add, marked, map(" ".__add__, plan[1:])))
    found.difference_update(_MARKED_MARKERS)
    return found


_MARKED_MARKERS = frozenset(">" + marker for marker in PLAN_MARKERS)


@dataclass(frozen=True)
class IntentVerdict:
    """The model's score for a text, whether it reaches the threshold, and the likeliest
    category with the sentence that weighed most."""

    score: float
    intent: bool
    category: str
    excerpt: str


@dataclass(frozen=True)
class IntentModel:
    """A fitted intent model (use `load`)."""

    version: str
    bias: float
    weights: dict[str, float]
    threshold: float
    category_bias: dict[str, float]
    category_weights: dict[str, dict[str, float]]

    @classmethod
    def load(cls, path: Path = DEFAULT_PATH) -> IntentModel:
        """Reads a model file."""
        try:
            raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                version=str(raw["version"]),
                bias=float(raw["bias"]),
                weights={k: float(v) for k, v in raw["weights"].items()},
                threshold=float(raw["threshold"]),
                category_bias={k: float(v) for k, v in raw["category_bias"].items()},
                category_weights={
                    c: {k: float(v) for k, v in w.items()}
                    for c, w in raw["category_weights"].items()
                },
            )
        except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise IntentModelError(f"cannot read intent model {path}: {exc}") from exc

    def to_json(self) -> str:
        """The model file's content."""
        return json.dumps(
            {
                "version": self.version,
                "bias": self.bias,
                "threshold": self.threshold,
                "weights": self.weights,
                "category_bias": self.category_bias,
                "category_weights": self.category_weights,
            },
            sort_keys=True,
            separators=(",", ":"),
        )

    def score(self, features: set[str]) -> float:
        """The log-odds that the text states a harmful plan."""
        return self.bias + sum(map(self.weights.get, features, repeat(0.0)))

    def judge(self, sentences: list[str]) -> IntentVerdict:
        """The verdict on a text given as its normalized sentences; the category and the excerpt
        (the sentence that weighs most) are worked out only for a text that reaches the
        threshold."""
        if sum(s.count(" ") + 1 for s in sentences) < MIN_WORDS:
            return IntentVerdict(score=0.0, intent=False, category="", excerpt="")
        # Plans never reach past a sentence, so the text's features are its sentences' together;
        # computed per sentence once, they also weigh each sentence when the text reaches the
        # threshold (the texts that take longest).
        each = sentence_features(sentences)
        features = set().union(*each)
        score = self.score(features)
        if score < self.threshold:
            return IntentVerdict(score=score, intent=False, category="", excerpt="")
        scores = list(map(self.score, each))
        heaviest = sentences[scores.index(max(scores))]  # the first on a tie
        return IntentVerdict(
            score=score,
            intent=True,
            category=self.category(features),
            excerpt=heaviest[:80].strip(),
        )

    def category(self, features: set[str]) -> str:
        """The harm category whose weights the features favour most (the first on a tie)."""
        table = self._category_table
        # A text has hundreds of features: one matrix sum, not a Python loop over them.
        rows = np.fromiter(map(table.rows.__getitem__, features & table.rows.keys()), np.intp)
        totals = table.bias + table.weights[rows].sum(axis=0)
        return table.names[int(np.argmax(totals))]  # the first on a tie

    @cached_property
    def _category_table(self) -> _CategoryTable:
        names = list(self.category_weights)
        features = sorted({f for weights in self.category_weights.values() for f in weights})
        return _CategoryTable(
            names=names,
            bias=np.array([self.category_bias[name] for name in names]),
            rows={feature: row for row, feature in enumerate(features)},
            weights=np.array(
                [[self.category_weights[name].get(f, 0.0) for name in names] for f in features]
            ).reshape(len(features), len(names)),
        )


@dataclass(frozen=True)
class _CategoryTable:
    """The category weights as a matrix: a row per weighed feature, a column per category."""

    names: list[str]
    bias: npt.NDArray[np.float64]
    rows: dict[str, int]
    weights: npt.NDArray[np.float64]


@lru_cache(maxsize=1)
def default_model() -> IntentModel | None:
    """The bundled model, loaded once; None when no model file ships (the rules work alone)."""
    if not DEFAULT_PATH.exists():
        return None
    return IntentModel.load()
