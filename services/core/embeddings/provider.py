"""The embedding provider interface: what every provider offers, and how it fails."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]


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
