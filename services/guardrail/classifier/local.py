"""The offline Layer B classifier: the local embedding model against curated exemplar sets.

Used when no ANTHROPIC_API_KEY is set. It produces the same fields as the LLM classifier:

- `aligned_domain`: the domain whose exemplars a ridge probe on the embedding votes for (the
  author's claimed domain wins a near tie); None for off-topic content (low alignment and
  closer to the off-topic exemplars than to any domain's).
- `alignment_score`: a logistic calibration of the evidence (probe votes, nearest-exemplar
  similarities to domains, harms and off-topic text), fitted leave-one-out on the exemplars by
  `local_fit`; read it as "how likely an exemplar with this evidence is a domain exemplar".
- `harm_risk` / `harm_categories`: the same for the 12 harm categories, with thresholds chosen so
  that almost no harm exemplar would be approved (see `local_fit`).
- `uncertain`: the closest domain and the closest harm or off-topic group are nearly tied, or
  on-topic text resembles harm (MEDIUM or more): whether that is benign text with trigger words
  ("monitor water quality") or harm dressed as social good is beyond this model, so a human
  decides instead of an automatic rejection.
- `solution_scores`: heuristics plus anchor similarity (`local_quality`), for solutions only.

It is a coarse instrument: it sees topic much better than intent, so it errs toward MEDIUM harm
(flagged for review) on social-good text that resembles a harm exemplar. Layer A runs first.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from services.core.domains import DOMAINS
from services.core.embeddings import EmbeddingProvider
from services.core.embeddings.factory import classifier_model
from services.core.logging import get_logger
from services.guardrail.classifier.base import (
    Classification,
    ClassifierError,
    ContentItem,
    ContentType,
    HarmRisk,
)
from services.guardrail.classifier.local_fit import FittedParams, fit, fit_path, margin
from services.guardrail.classifier.local_index import (
    EXEMPLARS_PATH,
    Evidence,
    ExemplarError,
    ExemplarIndex,
    Exemplars,
    default_cache_dir,
    embed_exemplars,
)
from services.guardrail.classifier.local_intent import (
    INTENT_PATH,
    IntentHead,
    features,
    unit_mean,
)
from services.guardrail.classifier.local_quality import solution_scores
from services.guardrail.classifier.local_text import MAX_WINDOWS, WINDOW_WORDS, windows
from services.guardrail.harms import HARM_CATEGORIES
from services.guardrail.rules.engine import RuleSet, default_ruleset

log = get_logger(__name__)

# The claimed domain is reported when the probe's vote for it is this close to the best vote
# and has some support of its own: many texts sit between two domains (a women's savings group
# is gender equality and poverty reduction), and the author knows best.
CLAIM_TOLERANCE = 0.30
CLAIM_MIN_VOTE = 0.15
# The intent head's off-topic probability from which a text fits no domain.
OFF_TOPIC_AT = 0.50
# Harm categories reported besides the top one must have at least this share of its vote.
CATEGORY_SHARE = 0.5
MIN_WORDS = 3


@dataclass(frozen=True)
class _Model:
    index: ExemplarIndex
    params: FittedParams
    head: IntentHead


class LocalClassifier:
    """Exemplar-based classifier on the local ONNX embedding model; safe to share across jobs.

    Loading (first call, or `load()` at startup) reads the exemplars and their embedding matrix
    (cached on disk by exemplar-file hash and model id; computing it takes a few seconds) and the
    fitted calibration. A calibration fitted on another exemplar file or model is refitted in
    process, with a warning, rather than applied to the wrong vector space.
    """

    def __init__(
        self,
        provider: EmbeddingProvider | None = None,
        *,
        exemplars_path: Path = EXEMPLARS_PATH,
        intent_path: Path = INTENT_PATH,
        rules: RuleSet | None = None,
        cache_dir: Path | None = None,
        use_disk_cache: bool = True,
        window_words: int = WINDOW_WORDS,
        max_windows: int = MAX_WINDOWS,
    ) -> None:
        self._provider = provider if provider is not None else classifier_model()
        self._exemplars_path = exemplars_path
        self._intent_path = intent_path
        self._rules = rules if rules is not None else default_ruleset()
        self._cache_dir = (cache_dir or default_cache_dir()) if use_disk_cache else None
        self._window_words = window_words
        self._max_windows = max_windows
        self._lock = threading.Lock()
        self._model: _Model | None = None
        # Recorded with every evaluation, and part of the verdict cache's key: names the exemplar
        # file and the intent head ("local-minilm-exemplars-v1+intent").
        self.name = f"local-minilm-exemplars-{exemplars_path.stem}+{intent_path.name.split('.')[1]}"

    def load(self) -> None:
        """Loads exemplars, embeddings and calibration now instead of on the first item."""
        self._loaded()

    def _loaded(self) -> _Model:
        if self._model is not None:
            return self._model
        with self._lock:
            if self._model is None:
                self._model = self._build()
        return self._model

    def _build(self) -> _Model:
        exemplars = Exemplars.load(self._exemplars_path)
        self._provider.embed(["warm up"])  # loads the model now, not inside the first item
        matrix = embed_exemplars(exemplars, self._provider, self._cache_dir)
        path = fit_path(self._exemplars_path)
        params = FittedParams.from_json(path.read_text()) if path.exists() else None
        if (
            params is None
            or params.exemplars_sha256 != exemplars.sha256
            or params.model_id != self._provider.model_id
        ):
            log.warning(
                "guardrail_local_calibration_stale",
                path=str(path),
                hint="run python -m tooling.guardrail_eval.fit_exemplars",
            )
            params = fit(exemplars, matrix, self._provider.model_id)
        head = IntentHead.load(self._intent_path)
        if head.model_id != self._provider.model_id:
            # Its embedding weights mean nothing in another model's space; refitting needs the
            # labelled posts, which ship with the repository, not with the service.
            raise ExemplarError(
                f"{self._intent_path} was fitted for {head.model_id}, "
                f"not {self._provider.model_id}: run python -m tooling.guardrail_eval.fit"
            )
        return _Model(ExemplarIndex(exemplars, matrix, params.ridge), params, head)

    async def classify(self, item: ContentItem) -> Classification:
        """The verdict; embedding runs in a worker thread (it blocks for milliseconds)."""
        return await asyncio.to_thread(self.classify_sync, item)

    def classify_sync(self, item: ContentItem) -> Classification:
        """The verdict, computed on the calling thread."""
        try:
            model = self._loaded()
        except (ExemplarError, OSError, ImportError, KeyError, ValueError) as exc:
            # A missing model file or a broken exemplar file does not heal on retry.
            raise ClassifierError(f"local classifier unavailable: {exc}", retryable=False) from exc
        try:
            return self._classify(model, item)
        except Exception as exc:
            raise ClassifierError(f"local classification failed: {exc}", retryable=True) from exc

    def _classify(self, model: _Model, item: ContentItem) -> Classification:
        started = time.perf_counter()
        texts = windows(item, window_words=self._window_words, max_windows=self._max_windows)
        vectors = self._provider.embed(texts)
        evidence = model.index.evidence(vectors)
        mean = unit_mean(vectors)
        head = model.head
        text = f"{item.title}\n{item.body}"
        probs = head.probabilities(features(text, self._rules), mean)
        p_benign, p_harm, p_off = probs["benign"], probs["harmful"], probs["off_topic"]
        cut = head.cutoffs
        risk = _risk(p_harm, cut.flag_at, cut.reject_at)
        off_topic = p_off >= OFF_TOPIC_AT
        domain = None if off_topic else _domain(evidence, item.claimed_domain)
        flagged = risk in (HarmRisk.MEDIUM, HarmRisk.HIGH)
        categories = _categories(evidence) if flagged else ()
        gap = margin(evidence)
        words = len(f"{item.title} {item.body}".split())
        # The head is sure of an approval, a rejection for harm or an off-topic text; anything
        # between goes to a person rather than being rejected for a low score.
        decided = p_benign >= cut.approve_at or p_harm >= cut.reject_at or off_topic
        uncertain = not decided or words < MIN_WORDS
        p_align = head.alignment(p_benign)
        scores = None
        if item.content_type == ContentType.SOLUTION:
            scores = solution_scores(f"{item.title}\n{item.body}", model.index.anchor_margins(mean))
        extra = _extra(evidence, p_align, p_harm, gap)
        extra["p_benign"] = round(p_benign, 4)
        extra["p_off_topic"] = round(p_off, 4)
        extra["windows"] = float(len(texts))
        extra["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
        return Classification(
            aligned_domain=domain,
            alignment_score=round(p_align, 4),
            harm_risk=risk,
            harm_categories=categories,
            solution_scores=scores,
            reasoning=_reasoning(evidence, domain, p_align, risk, categories, uncertain),
            model=self.name,
            cost_cents=0.0,
            uncertain=uncertain,
            extra=extra,
        )


def _risk(p_harm: float, flag_at: float, reject_at: float) -> HarmRisk:
    if p_harm >= reject_at:
        return HarmRisk.HIGH
    if p_harm >= flag_at:
        return HarmRisk.MEDIUM
    if p_harm >= flag_at / 2:
        return HarmRisk.LOW
    return HarmRisk.NONE


def _domain(evidence: Evidence, claimed: str | None) -> str:
    votes = evidence.domain_votes
    best = int(np.argmax(votes))
    if claimed in DOMAINS:
        claimed_index = DOMAINS.index(claimed)
        claimed_vote = float(votes[claimed_index])
        if claimed_vote >= CLAIM_MIN_VOTE and claimed_vote >= votes[best] - CLAIM_TOLERANCE:
            return claimed
    return DOMAINS[best]


def _categories(evidence: Evidence) -> tuple[str, ...]:
    votes = evidence.harm_votes
    order = np.argsort(-votes, kind="stable")
    top = float(votes[order[0]])
    picked = [order[0]] + [i for i in order[1:3] if top > 0 and votes[i] >= CATEGORY_SHARE * top]
    return tuple(HARM_CATEGORIES[i] for i in picked)


def _extra(evidence: Evidence, p_align: float, p_harm: float, gap: float) -> dict[str, float]:
    extra = {
        "p_aligned": round(p_align, 4),
        "p_harm": round(p_harm, 4),
        "margin": round(gap, 4),
        "best_domain_sim": round(evidence.feature("best_domain_sim"), 4),
        "best_harm_sim": round(evidence.feature("best_harm_sim"), 4),
        "off_topic_sim": round(evidence.off_topic_sim, 4),
        "benign_sim": round(evidence.benign_sim, 4),
        "off_topic_vote": round(evidence.off_topic_vote, 4),
    }
    for i in np.argsort(-evidence.domain_votes, kind="stable")[:3]:
        extra[f"domain_vote:{DOMAINS[i]}"] = round(float(evidence.domain_votes[i]), 4)
    for i in np.argsort(-evidence.harm_votes, kind="stable")[:3]:
        extra[f"harm_vote:{HARM_CATEGORIES[i]}"] = round(float(evidence.harm_votes[i]), 4)
    return extra


def _reasoning(
    evidence: Evidence,
    domain: str | None,
    p_align: float,
    risk: HarmRisk,
    categories: tuple[str, ...],
    uncertain: bool,
) -> str:
    where = f"closest to {domain} exemplars" if domain else "fits no domain's exemplars"
    text = f"Local exemplar classifier: {where} (alignment {p_align:.2f})"
    if risk in (HarmRisk.MEDIUM, HarmRisk.HIGH):
        text += f"; resembles harmful exemplars ({', '.join(categories)}), risk {risk.value}"
    elif evidence.off_topic_vote > max(evidence.domain_votes.max(), evidence.harm_votes.max()):
        text += "; resembles off-topic text"
    if uncertain:
        text += "; too close to call, needs a human"
    return text + "."
