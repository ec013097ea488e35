"""The local classifier's exemplar sets, embedded once, and the evidence they give about a text."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from services.core.cache_dir import user_cache_dir
from services.core.domains import DOMAINS
from services.core.embeddings.provider import EmbeddingProvider, Vectors
from services.core.logging import get_logger
from services.guardrail.harms import HARM_CATEGORIES

EXEMPLARS_PATH = Path(__file__).with_name("exemplars") / "v1.json"
QUALITY_DIMENSIONS: tuple[str, ...] = ("impact", "feasibility", "cost_efficiency")
# A group's score is the mean of its k best similarities: more robust than the single nearest
# exemplar (one lucky phrase match) and sharper than the centroid (groups are diverse).
TOP_K_DOMAIN = 3
TOP_K_HARM = 2
TOP_K_OFF_TOPIC = 3
TOP_K_BENIGN = 2
TOP_K_ANCHOR = 2

log = get_logger(__name__)
Floats = npt.NDArray[np.float32]


class ExemplarError(ValueError):
    """The exemplar file is malformed (unknown domain or category, empty or too small a set)."""


@dataclass(frozen=True)
class Exemplars:
    """The parsed exemplar file; row order here is the row order of the embedding matrix."""

    version: str
    sha256: str
    texts: tuple[str, ...]
    domain_rows: tuple[tuple[int, ...], ...]
    """Per domain (DOMAINS order): rows of its exemplars, benign contrasts included."""
    harm_rows: tuple[tuple[int, ...], ...]
    """Per harm category (HARM_CATEGORIES order)."""
    off_topic_rows: tuple[int, ...]
    benign_rows: tuple[int, ...]
    """Social-good statements that use a harm category's trigger words (also domain rows)."""
    anchor_rows: dict[str, tuple[tuple[int, ...], tuple[int, ...]]]
    """Per quality dimension: (high rows, low rows); anchors take no part in alignment or harm."""

    @classmethod
    def load(cls, path: Path = EXEMPLARS_PATH) -> Exemplars:
        """Parses and validates the file."""
        raw = path.read_bytes()
        data: dict[str, Any] = json.loads(raw)
        texts: list[str] = []

        def add(items: Sequence[str]) -> tuple[int, ...]:
            start = len(texts)
            texts.extend(str(t).strip() for t in items)
            return tuple(range(start, len(texts)))

        domains = data["domains"]
        harms = data["harms"]
        unknown = (set(domains) - set(DOMAINS)) | (set(harms) - set(HARM_CATEGORIES))
        if unknown:
            raise ExemplarError(f"unknown domains or harm categories: {sorted(unknown)}")
        domain_rows = {d: list(add(domains.get(d, []))) for d in DOMAINS}
        benign: list[int] = []
        for entry in data.get("benign_contrast", []):
            if entry["domain"] not in domain_rows or entry["near"] not in HARM_CATEGORIES:
                raise ExemplarError(f"benign contrast with unknown domain or category: {entry}")
            (row,) = add([entry["text"]])
            domain_rows[entry["domain"]].append(row)
            benign.append(row)
        harm_rows = tuple(add(harms.get(c, [])) for c in HARM_CATEGORIES)
        off_topic = add(data["off_topic"])
        anchors = {
            dim: (
                add(data["quality_anchors"][dim]["high"]),
                add(data["quality_anchors"][dim]["low"]),
            )
            for dim in QUALITY_DIMENSIONS
        }
        sizes = [len(r) for r in domain_rows.values()] + [len(r) for r in harm_rows]
        sizes += [len(off_topic)] + [len(r) for pair in anchors.values() for r in pair]
        if min(sizes) < TOP_K_DOMAIN + 1:
            # Leave-one-out needs k others in every group.
            raise ExemplarError("every exemplar group needs at least 4 statements")
        return cls(
            version=str(data["version"]),
            sha256=hashlib.sha256(raw).hexdigest(),
            texts=tuple(texts),
            domain_rows=tuple(tuple(domain_rows[d]) for d in DOMAINS),
            harm_rows=harm_rows,
            off_topic_rows=off_topic,
            benign_rows=tuple(benign),
            anchor_rows=anchors,
        )

    def cache_key(self, model_id: str) -> str:
        """Identifies the embedding matrix: the exemplar file's content and the model."""
        return hashlib.sha256(f"{self.sha256}:{model_id}".encode()).hexdigest()


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/betterworld/guardrail (or ~/.cache/...)."""
    return user_cache_dir("guardrail")


def embed_exemplars(
    exemplars: Exemplars, provider: EmbeddingProvider, cache_dir: Path | None
) -> Vectors:
    """The exemplar matrix, from the disk cache when it holds this file and model, else computed.

    Computing takes a few seconds (about 450 sentences); the cache is an optimization only, so
    any failure to read or write it falls back to computing.
    """
    path = None
    if cache_dir is not None:
        path = cache_dir / f"exemplars-{exemplars.cache_key(provider.model_id)[:24]}.npy"
        try:
            cached = np.load(path, allow_pickle=False)
            if cached.shape == (len(exemplars.texts), provider.dimensions):
                return cached.astype(np.float32)
        except (OSError, ValueError):
            pass
    started = time.perf_counter()
    # Batches of similar length waste less time on padding.
    order = sorted(range(len(exemplars.texts)), key=lambda i: len(exemplars.texts[i]))
    matrix = np.zeros((len(exemplars.texts), provider.dimensions), dtype=np.float32)
    for start in range(0, len(order), 32):
        rows = order[start : start + 32]
        matrix[rows] = provider.embed([exemplars.texts[i] for i in rows])
    log.info(
        "guardrail_exemplars_embedded",
        count=len(exemplars.texts),
        seconds=round(time.perf_counter() - started, 2),
    )
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npy", delete=False) as f:
                np.save(f, matrix, allow_pickle=False)
            os.replace(f.name, path)
        except OSError as exc:
            log.warning("guardrail_exemplar_cache_unwritable", path=str(path), error=str(exc))
    return matrix


@dataclass(frozen=True)
class Evidence:
    """What the exemplars say about one text: nearest-neighbour similarities and probe votes."""

    domain_sims: Floats
    """Per domain (DOMAINS order): mean of the top-k similarities to its exemplars."""
    harm_sims: Floats
    """Per harm category (HARM_CATEGORIES order), the worst window of the text."""
    off_topic_sim: float
    benign_sim: float
    """Similarity to benign contrasts: social-good text that shares harm trigger words."""
    domain_votes: Floats
    """Per domain: the linear probe's output (about 1 for a typical exemplar of it, 0 otherwise)."""
    harm_votes: Floats
    """Per harm category, the worst window of the text."""
    off_topic_vote: float

    def feature(self, name: str) -> float:
        """One named scalar feature for the calibration models."""
        if name == "aligned_vote":
            return float(self.domain_votes.sum())
        if name == "harm_vote":
            return float(self.harm_votes.sum())
        if name == "off_topic_vote":
            return self.off_topic_vote
        if name == "best_domain_sim":
            return float(self.domain_sims.max())
        if name == "best_harm_sim":
            return float(self.harm_sims.max())
        if name == "off_topic_sim":
            return self.off_topic_sim
        if name == "benign_sim":
            return self.benign_sim
        raise KeyError(name)


def _top_k_mean(sims: Floats, rows: Sequence[int], k: int) -> float:
    values = sims[list(rows)]
    values = values[np.isfinite(values)]
    k = min(k, len(values))
    return float(np.partition(values, len(values) - k)[-k:].mean())


class ExemplarIndex:
    """The embedded exemplars plus a ridge probe fitted on them; immutable and thread-safe.

    The probe is a one-vs-rest ridge regression from the embedding to the 28 groups (15 domains,
    12 harm categories, off-topic). Nearest-neighbour similarity mostly measures topic; the probe
    also learns directions such as covert, coercive or deceptive intent that cut across topics,
    which is what separates "monitor water quality" from "monitor protesters". Ridge has a
    closed form (one 385x385 solve, milliseconds) and exact leave-one-out predictions.
    """

    def __init__(self, exemplars: Exemplars, matrix: Vectors, ridge: float) -> None:
        self.exemplars = exemplars
        self.matrix = matrix
        self.ridge = ridge
        labels: dict[int, int] = {}
        for group, rows in enumerate(
            (*exemplars.domain_rows, *exemplars.harm_rows, exemplars.off_topic_rows)
        ):
            labels.update((r, group) for r in rows)
        self._rows = np.array(sorted(labels))
        targets = np.zeros((len(self._rows), len(DOMAINS) + len(HARM_CATEGORIES) + 1))
        targets[np.arange(len(self._rows)), [labels[r] for r in self._rows]] = 1.0
        design = _with_bias(matrix[self._rows].astype(np.float64))
        penalty = np.eye(design.shape[1]) * ridge
        penalty[-1, -1] = 0.0  # the intercept is not shrunk
        solved = np.linalg.solve(design.T @ design + penalty, design.T)
        self._weights = (solved @ targets).astype(np.float32)
        # Exact leave-one-out outputs: (prediction - leverage * target) / (1 - leverage).
        leverage = np.einsum("ij,ji->i", design, solved)[:, None]
        fitted = design @ solved @ targets
        self._loo_votes = ((fitted - leverage * targets) / (1.0 - leverage)).astype(np.float32)

    def votes(self, vectors: Vectors) -> Floats:
        """The probe's outputs, one row per vector, 28 columns."""
        return (_with_bias(vectors) @ self._weights).astype(np.float32)

    def evidence(self, vectors: Vectors) -> Evidence:
        """Evidence for one text embedded as one or more windows (rows of `vectors`).

        Domain and off-topic evidence come from the mean of the windows (the text as a whole);
        harm evidence from the worst window, so a harmful passage is not averaged away.
        """
        mean = vectors.mean(axis=0)
        mean = mean / max(float(np.linalg.norm(mean)), 1e-12)
        whole = mean[None, :] if len(vectors) > 1 else vectors
        parts = np.vstack([whole, vectors]) if len(vectors) > 1 else vectors
        sims = parts @ self.matrix.T
        votes = self.votes(parts)
        return self._evidence(sims, votes)

    def leave_one_out(self) -> dict[int, Evidence]:
        """Each exemplar's evidence as if it were new content: itself removed from every group
        and from the probe's training set."""
        sims = (self.matrix @ self.matrix.T).astype(np.float32)
        np.fill_diagonal(sims, -np.inf)
        return {
            int(r): self._evidence(sims[r][None, :], self._loo_votes[i][None, :])
            for i, r in enumerate(self._rows)
        }

    def _evidence(self, sims: Floats, votes: Floats) -> Evidence:
        """`sims` and `votes` have one row per view; row 0 is the whole text."""
        ex = self.exemplars
        whole = sims[0]
        n_domains, n_harms = len(DOMAINS), len(HARM_CATEGORIES)
        harm_sims = [
            max(_top_k_mean(row, rows, TOP_K_HARM) for row in sims) for rows in ex.harm_rows
        ]
        return Evidence(
            domain_sims=np.array(
                [_top_k_mean(whole, rows, TOP_K_DOMAIN) for rows in ex.domain_rows],
                dtype=np.float32,
            ),
            harm_sims=np.array(harm_sims, dtype=np.float32),
            off_topic_sim=_top_k_mean(whole, ex.off_topic_rows, TOP_K_OFF_TOPIC),
            benign_sim=_top_k_mean(whole, ex.benign_rows, TOP_K_BENIGN),
            domain_votes=votes[0, :n_domains].copy(),
            harm_votes=votes[:, n_domains : n_domains + n_harms].max(axis=0),
            off_topic_vote=float(votes[0, -1]),
        )

    def anchor_margins(self, vector: Vectors) -> dict[str, float]:
        """Per quality dimension: similarity to its high anchors minus that to its low ones."""
        sims = (vector.reshape(1, -1) @ self.matrix.T)[0]
        return {
            dim: _top_k_mean(sims, high, TOP_K_ANCHOR) - _top_k_mean(sims, low, TOP_K_ANCHOR)
            for dim, (high, low) in self.exemplars.anchor_rows.items()
        }


def _with_bias(x: npt.NDArray[Any]) -> npt.NDArray[Any]:
    return np.hstack([x, np.ones((len(x), 1), dtype=x.dtype)])
