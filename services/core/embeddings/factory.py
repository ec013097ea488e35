"""Picks the embedding provider named by the settings; one local model of each kind per process."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from services.core.embeddings.local_minilm import LocalMiniLM
from services.core.embeddings.provider import EmbeddingProvider

if TYPE_CHECKING:
    from services.core.settings import Settings

PROVIDERS = ("local", "voyage")
"""Names EMBEDDING_PROVIDER accepts."""


@functools.cache
def _shared_local(threads: int, quantized: bool = True) -> EmbeddingProvider:
    # One model of each kind per process: search and title vectors share it (it is
    # thread-safe, and each copy costs 60 MB, 170 MB for the float one).
    return LocalMiniLM(threads=threads, quantized=quantized)


def classifier_model() -> EmbeddingProvider:
    """The local model computing in float32, for the local guardrail classifier.

    Its calibration (exemplars/v1.fit.json) was fitted on these vectors, and its decisions sit
    on thresholds that the int8 model's small differences (cosine 0.98-0.999) move: two of its
    test examples changed verdict. The classifier only runs without a model API key.
    """
    return _shared_local(1, quantized=False)


def build_provider(
    name: str = "local", *, threads: int = 1, settings: Settings | None = None
) -> EmbeddingProvider:
    """The provider named by EMBEDDING_PROVIDER.

    "local" needs no network, no key and no settings. "voyage" (the hosted Voyage AI API) reads
    its key, model, base URL, timeout and retries from `settings`, which it then requires.
    Nothing is fetched or loaded until the first `embed`.
    """
    if name == "local":
        return _shared_local(threads)
    if name == "voyage":
        if settings is None:
            raise ValueError(
                "embedding provider 'voyage' needs settings: "
                "call build_provider('voyage', settings=settings)"
            )
        from services.core.embeddings.voyage import VoyageEmbeddings

        return VoyageEmbeddings.from_settings(settings)
    raise ValueError(
        f"unknown embedding provider {name!r}; available: {', '.join(PROVIDERS)} "
        "(a provider with other dimensions than the stored vectors needs its own migration)"
    )
