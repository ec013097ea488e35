"""The local embedding model: shape, normalization, batching and real semantic similarity."""

from __future__ import annotations

import time

import numpy as np
import pytest

from services.core.embeddings import build_provider


@pytest.fixture(scope="module")
def model():  # type: ignore[no-untyped-def]
    return build_provider("local")


def test_vectors_are_384_dim_unit_length(model) -> None:  # type: ignore[no-untyped-def]
    vectors = model.embed(["Lake Merritt has algae blooms", "", "ñandú 🌊 water"])
    assert vectors.shape == (3, 384)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert model.embed([]).shape == (0, 384)


def test_batches_match_single_embeddings(model) -> None:  # type: ignore[no-untyped-def]
    texts = ["short", "a much longer sentence about rural clinics lacking basic medicine"]
    batch = model.embed(texts)
    singles = np.vstack([model.embed([t]) for t in texts])
    assert np.allclose(batch, singles, atol=1e-4)


def test_similar_meanings_are_closer_than_unrelated_ones(model) -> None:  # type: ignore[no-untyped-def]
    a, b, c = model.embed(
        [
            "The lake's water is contaminated and fish are dying",
            "Pollution in the reservoir is killing aquatic life",
            "The football team won the championship last night",
        ]
    )
    assert float(a @ b) > float(a @ c) + 0.2


def test_a_sentence_takes_milliseconds(model) -> None:  # type: ignore[no-untyped-def]
    model.embed(["warm up"])
    started = time.perf_counter()
    for _ in range(20):
        model.embed(["Community gardens improve food security in low-income neighborhoods"])
    per_sentence_ms = (time.perf_counter() - started) / 20 * 1000
    assert per_sentence_ms < 50  # about 4 ms on an idle core; generous for a loaded CI box


def test_unknown_provider_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown embedding provider"):
        build_provider("voyage-but-misspelled")


def test_a_process_holds_one_local_model_whoever_asks() -> None:
    # The worker's classifier and its search embedder (and a service's title and search
    # vectors) share one ONNX session: each copy costs about 160 MB.
    assert build_provider("local") is build_provider("local")
