"""Classifier verdicts cached in Redis by SHA-256 of the normalized content, so resubmitting the
same text (or the same text re-indented, re-cased, with invisible characters) costs nothing.

Normalization here is deliberately lighter than Layer A's: NFKC, case folding, invisible
characters dropped and whitespace collapsed. Layer A's leet and separator folding exist to catch
obfuscation and would make texts with different meanings share a verdict.

A cache failure never fails a job: Redis errors and unreadable entries count as a miss (logged).
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import replace
from typing import Any

from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.core.logging import get_logger
from services.guardrail.classifier.base import Classification, ContentItem, HarmRisk, SolutionScores

log = get_logger(__name__)
CACHE_LOOKUPS = Counter(
    "guardrail_cache_lookups_total", "Classifier cache lookups by result", ["result"]
)
FORMAT_VERSION = "v1"
"""Part of every key: bump it when the stored JSON or the normalization changes."""
_WHITESPACE = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """NFKC, case-folded, without format characters (zero-width, bidi), whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(c for c in text if unicodedata.category(c) != "Cf")
    return _WHITESPACE.sub(" ", text).strip()


def cache_key(item: ContentItem, classifier_name: str) -> str:
    """Hex SHA-256 over content type, claimed domain, normalized title and body, classifier."""
    # Length-prefixed fields: no two different field splits hash the same bytes.
    parts = [
        FORMAT_VERSION,
        classifier_name,
        item.content_type.value,
        item.claimed_domain or "",
        normalize_text(item.title),
        normalize_text(item.body),
    ]
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8")
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def dump_classification(result: Classification) -> str:
    """JSON of every field of a Classification."""
    scores = result.solution_scores
    return json.dumps(
        {
            "aligned_domain": result.aligned_domain,
            "alignment_score": result.alignment_score,
            "harm_risk": result.harm_risk.value,
            "harm_categories": list(result.harm_categories),
            "solution_scores": None
            if scores is None
            else {
                "impact": scores.impact,
                "feasibility": scores.feasibility,
                "cost_efficiency": scores.cost_efficiency,
            },
            "reasoning": result.reasoning,
            "model": result.model,
            "cost_cents": result.cost_cents,
            "uncertain": result.uncertain,
            "extra": result.extra,
        },
        separators=(",", ":"),
    )


def load_classification(raw: str | bytes) -> Classification:
    """Inverse of dump_classification; raises ValueError/KeyError/TypeError on a bad entry."""
    data: dict[str, Any] = json.loads(raw)
    scores = data["solution_scores"]
    return Classification(
        aligned_domain=data["aligned_domain"],
        alignment_score=float(data["alignment_score"]),
        harm_risk=HarmRisk(data["harm_risk"]),
        harm_categories=tuple(str(c) for c in data["harm_categories"]),
        solution_scores=None
        if scores is None
        else SolutionScores(
            impact=float(scores["impact"]),
            feasibility=float(scores["feasibility"]),
            cost_efficiency=float(scores["cost_efficiency"]),
        ),
        reasoning=str(data["reasoning"]),
        model=str(data["model"]),
        cost_cents=float(data["cost_cents"]),
        uncertain=bool(data["uncertain"]),
        extra={str(k): float(v) for k, v in data["extra"].items()},
    )


class ResultCache:
    """get/set of verdicts per (content, classifier) with a TTL."""

    def __init__(
        self, redis: Redis, *, ttl_seconds: int, prefix: str = "bw:guardrail:cache"
    ) -> None:
        self._redis = redis
        self._ttl = ttl_seconds
        self._prefix = prefix

    def _key(self, item: ContentItem, classifier_name: str) -> str:
        return f"{self._prefix}:{cache_key(item, classifier_name)}"

    async def get(self, item: ContentItem, classifier_name: str) -> Classification | None:
        """The cached verdict with cost_cents 0 (a hit costs nothing), or None on a miss/error."""
        key = self._key(item, classifier_name)
        try:
            raw = await self._redis.get(key)
        except (RedisError, OSError):
            CACHE_LOOKUPS.labels(result="error").inc()
            log.warning("guardrail_cache_unavailable", operation="get")
            return None
        if raw is None:
            CACHE_LOOKUPS.labels(result="miss").inc()
            return None
        try:
            cached = load_classification(raw)
        except (ValueError, KeyError, TypeError, AttributeError):
            CACHE_LOOKUPS.labels(result="error").inc()
            log.warning("guardrail_cache_entry_unreadable", key=key)
            return None
        CACHE_LOOKUPS.labels(result="hit").inc()
        return replace(cached, cost_cents=0.0)

    async def set(self, item: ContentItem, classifier_name: str, result: Classification) -> bool:
        """Stores a verdict for the TTL; False (logged) when Redis failed."""
        if self._ttl <= 0:
            return False
        try:
            await self._redis.set(
                self._key(item, classifier_name), dump_classification(result), ex=self._ttl
            )
        except (RedisError, OSError):
            log.warning("guardrail_cache_unavailable", operation="set")
            return False
        return True
