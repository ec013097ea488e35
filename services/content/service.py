"""The content service's composition: its dependencies and servicers."""

from __future__ import annotations

from concurrent.futures import Executor

import grpc
from betterworld.content.v1 import content_pb2_grpc

from services.content.deps import ContentDeps
from services.content.page_cache import PageCache
from services.content.queue import EmbeddingQueue
from services.content.servicer import ContentInternalServicer, ContentServicer
from services.content.sql import SqlContentStore
from services.content.tables import EMBEDDING_DIMENSIONS
from services.core.embeddings import build_provider
from services.core.pagination import CursorCodec
from services.core.runtime import Runtime
from services.core.settings import SettingsError


def build_deps(runtime: Runtime, *, item_executor: Executor | None = None) -> ContentDeps:
    """The content domain's dependencies from the process runtime; `item_executor` runs the
    items' search embeddings (see `ContentDeps.item_executor`)."""
    settings = runtime.settings
    embedder = build_provider(settings.embedding_provider, settings=settings)
    if embedder.dimensions != EMBEDDING_DIMENSIONS:
        raise SettingsError(
            f"EMBEDDING_PROVIDER={settings.embedding_provider} ({embedder.model_id}) gives "
            f"{embedder.dimensions}-dimension vectors but the schema stores "
            f"{EMBEDDING_DIMENSIONS}; switching needs a migration of the embedding columns "
            "first (README: Changing the embedding provider)"
        )
    embeddings = EmbeddingQueue(settings.redis_url)
    runtime.on_close(embeddings.close)
    titles = build_provider("local")  # the same instance as `embedder` when that is local
    return ContentDeps(
        store=SqlContentStore(runtime.engine),
        cursors=CursorCodec(settings.cursor_secret.get_secret_value().encode()),
        queue=runtime.evaluation_queue,
        embeddings=embeddings,
        embedder=embedder,
        titles=titles,
        pages=PageCache(
            ttl_seconds=settings.list_cache_seconds,
            max_entries=settings.list_cache_entries,
            stale_seconds=settings.list_cache_stale_seconds,
        ),
        item_executor=item_executor,
        activity=runtime.redis,
    )


def register(server: grpc.aio.Server, runtime: Runtime) -> None:
    """Adds the public and the internal content servicers."""
    # The local model loads on the first create or search (about 0.3 s, and 60 MB of memory
    # that an idle process does without).
    deps = build_deps(runtime)
    content_pb2_grpc.add_ContentServiceServicer_to_server(ContentServicer(deps), server)
    content_pb2_grpc.add_ContentInternalServiceServicer_to_server(
        ContentInternalServicer(deps), server
    )
