"""Text embeddings: a pluggable provider, the local ONNX model by default."""

from services.core.embeddings.provider import EmbeddingProvider, build_provider

__all__ = ["EmbeddingProvider", "build_provider"]
