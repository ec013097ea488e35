"""Fits the local classifier's calibration on its exemplars (leave-one-out).

`python -m tooling.guardrail_eval.fit_exemplars [--check]` writes (or with --check only
verifies) `exemplars/v1.fit.json` next to the exemplar file it was fitted on; the classifier
refits in process, with a warning, when that file was fitted on another exemplar file or model.

Every exemplar is scored as if it were new content (see `ExemplarIndex.leave_one_out`): its
similarities to the groups are computed with itself left out, and the ridge probe's outputs are
the exact leave-one-out predictions. Three logistic regressions are fitted on that evidence:

- alignment: domain exemplars (benign contrasts included) are positives, harm and off-topic
  exemplars negatives.
- harm: harm exemplars are positives, everything else negatives.
- topic: domain exemplars against off-topic ones only (harm exemplars left out). It tells
  "on-topic text that resembles harm" (the classifier cannot tell benign trigger words from
  harm dressed as social good: uncertain, human review) from off-topic text (reject).

All three have an L2 penalty (features standardized) so the exemplars, which are cleaner than real
content, do not push the weights to a hard step. The MEDIUM harm threshold is then chosen on the
leave-one-out probabilities for the decision rule the worker applies to verified agents (approve
when alignment >= 0.70 and harm is below MEDIUM): the highest threshold at which at most 1% of
harm exemplars would be approved and at least 90% reach MEDIUM on their own. LOW is half of it
(informational: LOW does not block approval). The evaluation set plays no part in any of this.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from services.guardrail.classifier.local_index import (
    EXEMPLARS_PATH,
    Evidence,
    ExemplarIndex,
    Exemplars,
)

Matrix = npt.NDArray[np.float64]

MODULE = "tooling.guardrail_eval.fit_exemplars"
"""The command that writes the calibration file."""
RIDGE = 1.0
ALIGNMENT_FEATURES = (
    "aligned_vote",
    "harm_vote",
    "off_topic_vote",
    "best_domain_sim",
    "off_topic_sim",
    "best_harm_sim",
)
TOPIC_FEATURES = ("aligned_vote", "off_topic_vote", "best_domain_sim", "off_topic_sim")
HARM_FEATURES = ("harm_vote", "aligned_vote", "best_harm_sim", "best_domain_sim", "benign_sim")
L2 = 1.0
APPROVE_AT = 0.70
MAX_HARM_APPROVED = 0.01
MIN_HARM_RECALL_MEDIUM = 0.90
HARM_HIGH = 0.80
# Below this distance between the best domain similarity and the best harm or off-topic one the
# nearest groups are nearly tied: the item is marked uncertain and goes to review.
UNCERTAIN_MARGIN = 0.02


def fit_path(exemplars_path: Path = EXEMPLARS_PATH) -> Path:
    """Where the fitted parameters of an exemplar file live (`v1.json` -> `v1.fit.json`)."""
    return exemplars_path.with_suffix(".fit.json")


def feature_vector(evidence: Evidence, names: tuple[str, ...]) -> list[float]:
    """The named features of one text, in order."""
    return [evidence.feature(n) for n in names]


@dataclass(frozen=True)
class Logistic:
    """A logistic regression on standardized features."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float

    def probability(self, evidence: Evidence) -> float:
        """P(positive) for one text."""
        x = np.array(feature_vector(evidence, self.features))
        z = (x - np.array(self.mean)) / np.array(self.scale)
        return float(1.0 / (1.0 + np.exp(-(z @ np.array(self.weights) + self.bias))))

    @classmethod
    def fit(cls, names: tuple[str, ...], x: Matrix, y: Matrix, l2: float = L2) -> Logistic:
        """Newton's method on the L2-penalized log-loss (the bias is not penalized)."""
        mean = x.mean(axis=0)
        scale = x.std(axis=0) + 1e-9
        z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
        w = np.zeros(z.shape[1])
        penalty = np.full(z.shape[1], l2)
        penalty[-1] = 0.0
        for _ in range(100):
            p = 1.0 / (1.0 + np.exp(-(z @ w)))
            gradient = z.T @ (p - y) + penalty * w
            hessian = (z * (p * (1 - p))[:, None]).T @ z + np.diag(penalty)
            step = np.linalg.solve(hessian, gradient)
            w -= step
            if float(np.abs(step).max()) < 1e-10:
                break
        return cls(
            features=names,
            mean=tuple(float(v) for v in mean),
            scale=tuple(float(v) for v in scale),
            weights=tuple(float(v) for v in w[:-1]),
            bias=float(w[-1]),
        )


@dataclass(frozen=True)
class FittedParams:
    """Everything the classifier needs besides the exemplars and the model."""

    exemplars_version: str
    exemplars_sha256: str
    model_id: str
    ridge: float
    alignment: Logistic
    harm: Logistic
    topic: Logistic
    harm_low: float
    harm_medium: float
    harm_high: float
    uncertain_margin: float
    leave_one_out: dict[str, float]
    """Diagnostics of the fit on the exemplars themselves (not an evaluation)."""

    def to_json(self) -> str:
        """Stable, reviewable JSON."""
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> FittedParams:
        """Parses what `to_json` wrote."""
        data: dict[str, Any] = json.loads(text)
        for key in ("alignment", "harm", "topic"):
            model = data[key]
            data[key] = Logistic(
                features=tuple(model["features"]),
                mean=tuple(model["mean"]),
                scale=tuple(model["scale"]),
                weights=tuple(model["weights"]),
                bias=float(model["bias"]),
            )
        return cls(**data)


def margin(evidence: Evidence) -> float:
    """Best domain similarity minus the best harm or off-topic one."""
    return evidence.feature("best_domain_sim") - max(
        evidence.feature("best_harm_sim"), evidence.feature("off_topic_sim")
    )


def fit(exemplars: Exemplars, matrix: npt.NDArray[np.float32], model_id: str) -> FittedParams:
    """Fits both regressions and the harm thresholds on leave-one-out evidence."""
    index = ExemplarIndex(exemplars, matrix, RIDGE)
    loo = index.leave_one_out()
    rows = list(loo)
    domain_of = {r: d for d, group in enumerate(exemplars.domain_rows) for r in group}
    harm_of = {r: c for c, group in enumerate(exemplars.harm_rows) for r in group}

    def design(names: tuple[str, ...]) -> Matrix:
        return np.array([feature_vector(loo[r], names) for r in rows], dtype=np.float64)

    is_domain = np.array([r in domain_of for r in rows])
    is_harm = np.array([r in harm_of for r in rows])
    is_off = ~is_domain & ~is_harm
    alignment = Logistic.fit(ALIGNMENT_FEATURES, design(ALIGNMENT_FEATURES), is_domain * 1.0)
    harm = Logistic.fit(HARM_FEATURES, design(HARM_FEATURES), is_harm * 1.0)
    on_topic = ~is_harm
    topic = Logistic.fit(
        TOPIC_FEATURES, design(TOPIC_FEATURES)[on_topic], is_domain[on_topic] * 1.0
    )

    p_align = np.array([alignment.probability(loo[r]) for r in rows])
    p_harm = np.array([harm.probability(loo[r]) for r in rows])
    p_topic = np.array([topic.probability(loo[r]) for r in rows])
    uncertain = np.array([abs(margin(loo[r])) < UNCERTAIN_MARGIN for r in rows])
    medium = 0.05
    for t in np.arange(0.50, 0.049, -0.01):
        approved = (p_align >= APPROVE_AT) & (p_harm < t) & ~uncertain
        recall = float(np.mean(p_harm[is_harm] >= t))
        if np.mean(approved[is_harm]) <= MAX_HARM_APPROVED and recall >= MIN_HARM_RECALL_MEDIUM:
            medium = float(t)
            break
    approved = (p_align >= APPROVE_AT) & (p_harm < medium) & ~uncertain
    domain_hits = [int(np.argmax(loo[r].domain_votes)) == d for r, d in domain_of.items()]
    sim_hits = [int(np.argmax(loo[r].domain_sims)) == d for r, d in domain_of.items()]
    category_hits = [int(np.argmax(loo[r].harm_votes)) == c for r, c in harm_of.items()]
    diagnostics = {
        "domain_accuracy": np.mean(domain_hits),
        "domain_accuracy_nearest_neighbours_only": np.mean(sim_hits),
        "harm_category_accuracy": np.mean(category_hits),
        "aligned_approved": np.mean(approved[is_domain]),
        "aligned_alignment_at_least_0.70": np.mean(p_align[is_domain] >= APPROVE_AT),
        "aligned_harm_medium_or_more": np.mean(p_harm[is_domain] >= medium),
        "aligned_uncertain": np.mean(uncertain[is_domain]),
        "off_topic_alignment_below_0.40": np.mean(p_align[is_off] < 0.40),
        "off_topic_topic_below_0.50": np.mean(p_topic[is_off] < 0.50),
        "harm_topic_at_least_0.50": np.mean(p_topic[is_harm] >= 0.50),
        "off_topic_approved": np.mean(approved[is_off]),
        "harm_approved": np.mean(approved[is_harm]),
        "harm_recall_at_medium": np.mean(p_harm[is_harm] >= medium),
        "harm_alignment_below_0.70": np.mean(p_align[is_harm] < APPROVE_AT),
        "exemplars_scored": len(rows),
    }
    return FittedParams(
        exemplars_version=exemplars.version,
        exemplars_sha256=exemplars.sha256,
        model_id=model_id,
        ridge=RIDGE,
        alignment=alignment,
        harm=harm,
        topic=topic,
        harm_low=round(medium / 2, 4),
        harm_medium=round(medium, 4),
        harm_high=max(HARM_HIGH, round(medium, 4)),
        uncertain_margin=UNCERTAIN_MARGIN,
        leave_one_out={k: round(float(v), 4) for k, v in diagnostics.items()},
    )
