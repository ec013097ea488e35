"""The embedding provider interface and the factory that picks one from settings."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from services.core.settings import Settings

Vectors = npt.NDArray[np.float32]

PROVIDERS = ("local", "voyage")
"""Names EMBEDDING_PROVIDER accepts."""


class EmbeddingError(Exception):
    """An embedding call failed (network, timeout, rate limit, bad output) or is misconfigured.

    Messages name the provider and model and never contain a credential.
    """


class EmbeddingConfigError(EmbeddingError, ValueError):
    """The provider cannot be built from these settings; the message names the setting."""


class EmbeddingProvider(Protocol):
    """Turns texts into L2-normalized vectors (cosine similarity is a dot product)."""

    model_id: str
    """Identifies the vector space; vectors of different models are never compared."""
    dimensions: int
    """Vector length; a `vector(N)` column must match it."""

    def embed(self, texts: Sequence[str]) -> Vectors:
        """One row per text, float32, unit length. Blocking: call from a thread in async code.

        Texts are embedded as documents (what gets stored and searched).
        """
        ...


def embed_queries(provider: EmbeddingProvider, texts: Sequence[str]) -> Vectors:
    """Embeds search queries: with the provider's query mode when it has one (Voyage does),
    otherwise as `embed` (the local model treats both alike). Blocking, like `embed`."""
    method = getattr(provider, "embed_queries", None)
    if callable(method):
        vectors: Vectors = method(texts)
        return vectors
    return provider.embed(texts)


@functools.cache
def _shared_local(threads: int, quantized: bool = True) -> EmbeddingProvider:
    # One model of each kind per process: search and title vectors share it (it is
    # thread-safe, and each copy costs 60 MB, 170 MB for the float one).
    from services.core.embeddings.local_minilm import LocalMiniLM

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
