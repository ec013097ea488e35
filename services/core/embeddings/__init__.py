"""Text embeddings: a pluggable provider, the local ONNX model by default."""

from services.core.embeddings.factory import build_provider
from services.core.embeddings.provider import EmbeddingProvider

__all__ = ["EmbeddingProvider", "build_provider"]
