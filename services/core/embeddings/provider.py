"""The embedding provider interface and the factory that picks one from settings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]


class EmbeddingProvider(Protocol):
    """Turns texts into L2-normalized vectors (cosine similarity is a dot product)."""

    model_id: str
    """Identifies the vector space; vectors of different models are never compared."""
    dimensions: int
    """Vector length; a `vector(N)` column must match it."""

    def embed(self, texts: Sequence[str]) -> Vectors:
        """One row per text, float32, unit length. Blocking: call from a thread in async code."""
        ...


def build_provider(name: str = "local", *, threads: int = 1) -> EmbeddingProvider:
    """The provider named by EMBEDDING_PROVIDER; "local" needs no network and no key."""
    if name == "local":
        from services.core.embeddings.local_minilm import LocalMiniLM

        return LocalMiniLM(threads=threads)
    raise ValueError(
        f"unknown embedding provider {name!r}; available: local "
        "(a hosted provider needs its own dimensions, migration and key)"
    )
