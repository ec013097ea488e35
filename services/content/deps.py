"""What the content domain functions need, built once by the service's composition root."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from services.core.embeddings import EmbeddingProvider
from services.core.pagination import CursorCodec
from services.core.queues import EvaluationQueue


@dataclass(frozen=True)
class ContentDeps:
    """Clients of the content domain."""

    engine: AsyncEngine
    cursors: CursorCodec
    queue: EvaluationQueue
    embedder: EmbeddingProvider

    async def embed(self, text: str) -> list[float]:
        """One embedding, computed off the event loop (a few milliseconds of CPU)."""
        vectors = await asyncio.to_thread(self.embedder.embed, [text])
        return [float(x) for x in vectors[0]]
