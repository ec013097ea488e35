"""The local classifier's intent head: is a text benign, harmful or off-topic, read from its words.

Embeddings see topic far better than intent: a report about trafficking and a plan to traffic
sit close together. The head is a multinomial logistic regression over three feature groups: the
words and word pairs of Layer A's de-obfuscated text (binary; "we will", "survivors", "report",
"quietly", "investors" carry intent), what Layer A's rules noticed without rejecting (a harm
named with no act, an act governed by a protective context), and the text's mean embedding.
It is fitted offline on labelled posts (`make guardrail-fit`) and stored as plain numbers, so
running it costs a dictionary lookup per word and one small matrix product.

`cutoffs` map its probabilities onto the decision's scale: a benign probability at `approve_at`
becomes an alignment of 0.70 (the approval threshold), and harm at `flag_at` / `reject_at`
becomes MEDIUM / HIGH risk.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np
import numpy.typing as npt

from services.guardrail.rules.engine import RuleSet
from services.guardrail.rules.intent import RULE_ID as INTENT_RULE
from services.guardrail.rules.normalize import normalize

INTENT_PATH = Path(__file__).with_name("exemplars") / "v1.intent.json"
CLASSES = ("benign", "harmful", "off_topic")
_TOKEN = re.compile(r"[a-z0-9]+")


def unit_mean(vectors: npt.NDArray[np.floating]) -> npt.NDArray[np.floating]:
    """The mean of a text's window vectors, L2-normalized: the head's embedding feature."""
    mean = vectors.mean(axis=0)
    return mean / max(float(np.linalg.norm(mean)), 1e-12)


def features(text: str, rules: RuleSet) -> list[str]:
    """Words and adjacent word pairs of the de-obfuscated text, and Layer A's notes, each once.

    A note is `__a_` plus a category, a rule id or what kept the match from rejecting (an
    exception id, or `no_intent`); the prefix cannot collide with a word.
    """
    words = _TOKEN.findall(normalize(text))
    grams = words + [f"{a} {b}" for a, b in pairwise(words)]
    for match in rules.evaluate(text).matches:
        if match.rule_id == INTENT_RULE:
            continue  # the learned check was fitted on the head's own training posts
        grams += [
            f"__a_{match.category}",
            f"__a_rule_{match.rule_id}",
            f"__a_context_{match.exception_id or 'none'}",
        ]
    return list(dict.fromkeys(grams))


@dataclass(frozen=True)
class Cutoffs:
    """Where the head's probabilities meet the decision's thresholds."""

    approve_at: float
    """Benign probability that maps to alignment 0.70 (approval)."""
    flag_at: float
    """Harm probability from which risk is MEDIUM (never approved)."""
    reject_at: float
    """Harm probability from which risk is HIGH (rejected)."""


@dataclass(frozen=True)
class IntentHead:
    """A fitted head: vocabulary, weights per class, embedding weight and cutoffs."""

    vocabulary: dict[str, int]
    weights: npt.NDArray[np.float64]  # classes x (vocabulary + embedding dimensions)
    bias: npt.NDArray[np.float64]
    embedding_weight: float
    cutoffs: Cutoffs
    model_id: str
    sha256: str
    """Digest of the training data it was fitted on (for the record)."""

    @classmethod
    def load(cls, path: Path = INTENT_PATH) -> IntentHead:
        """Reads a fitted head written by `to_json`."""
        raw = json.loads(path.read_text(encoding="utf-8"))
        if tuple(raw["classes"]) != CLASSES:
            raise ValueError(f"{path}: classes {raw['classes']} are not {CLASSES}")
        vocabulary = {gram: i for i, gram in enumerate(raw["vocabulary"])}
        return cls(
            vocabulary=vocabulary,
            weights=np.asarray(raw["weights"], dtype=np.float64),
            bias=np.asarray(raw["bias"], dtype=np.float64),
            embedding_weight=float(raw["embedding_weight"]),
            cutoffs=Cutoffs(**raw["cutoffs"]),
            model_id=str(raw["model_id"]),
            sha256=str(raw["training_sha256"]),
        )

    def to_json(self) -> str:
        """The head as JSON (weights rounded to 6 digits: far below any decision's resolution)."""
        vocabulary = sorted(self.vocabulary, key=self.vocabulary.__getitem__)
        return json.dumps(
            {
                "classes": list(CLASSES),
                "model_id": self.model_id,
                "training_sha256": self.sha256,
                "embedding_weight": self.embedding_weight,
                "cutoffs": self.cutoffs.__dict__,
                "vocabulary": vocabulary,
                "bias": [round(float(b), 6) for b in self.bias],
                "weights": [[round(float(w), 6) for w in row] for row in self.weights],
            },
            separators=(",", ":"),
        )

    def probabilities(
        self, grams: Iterable[str], embedding: npt.NDArray[np.floating]
    ) -> dict[str, float]:
        """P(benign), P(harmful), P(off_topic) for one text's features and mean embedding."""
        size = len(self.vocabulary)
        columns = [i for gram in grams if (i := self.vocabulary.get(gram)) is not None]
        logits = self.bias + self.weights[:, columns].sum(axis=1)
        logits = logits + self.weights[:, size:] @ (embedding * self.embedding_weight)
        exp = np.exp(logits - logits.max())
        probs = exp / exp.sum()
        return {name: float(p) for name, p in zip(CLASSES, probs, strict=True)}

    def alignment(self, p_benign: float) -> float:
        """The benign probability on the decision's scale: `approve_at` becomes 0.70."""
        at = self.cutoffs.approve_at
        if p_benign >= at:
            return 0.70 + 0.30 * (p_benign - at) / max(1.0 - at, 1e-9)
        return 0.70 * p_benign / max(at, 1e-9)
